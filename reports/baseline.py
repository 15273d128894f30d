"""The committed baseline of field accuracies, and the comparison the merge gate makes against it."""

from __future__ import annotations

from pathlib import Path

from fixtures.atomic import write_json_atomic
from reports.scoring import METRICS, score

BASELINE_PATH = Path(__file__).parent / "baseline.json"


def accuracies(cases, predictions: dict) -> dict:
    totals = dict.fromkeys(METRICS, 0)
    for case in cases:
        p = predictions[case.id].parsed
        for metric, ok in score(case.expected, p.obj, p.json_valid, p.schema_valid).items():
            totals[metric] += ok
    return {m: round(totals[m] / len(cases), 4) for m in METRICS}


def regressions(current: dict, baseline: dict, tolerance: float) -> list[str]:
    return [
        f"  {m}: {current[m]:.1%} now, baseline {baseline[m]:.1%} (allowed drop {tolerance:.0%})"
        for m in METRICS
        if m in baseline and current[m] < baseline[m] - tolerance - 1e-9
    ]


def write_baseline(current: dict, base_model: str, n: int, path: Path = BASELINE_PATH) -> None:
    data = {"candidate": "fine-tuned", "split": "test", "base_model": base_model, "n": n, "fields": current}
    write_json_atomic(path, data)
