"""What the suite expects of a model: one record per base model@runtime, owned by this module alone.

<golden dir>/<base model>@<runtime>/expectations.json holds, for every candidate and every run of it (one run per
training seed for a candidate on the trained adapter, one run otherwise):
- the run's identity: the hash of everything that shaped its outputs, the adapter's weight bytes included
  (fixtures/predictions.py candidate_key), and for a trained adapter its key and seed;
- its decision on every case it was asked about (parse outcome and the four decision fields; never the free-text
  reason, so wording drift does not count).

That one record is the golden snapshot (the decisions), the expected failures (the decisions that are wrong), and
the merge gate's baseline (per-case outcomes per seed, and so the seed band of every metric). It is written only
by `pytest evals --update-expectations`, which re-records every candidate over every case in one go.

How a recorded case is judged (`check_case`):
- strict, when this run's identities equal the recorded ones (same weights, same prompt, same generation): any
  decision that differs from the record fails. A recorded wrong answer that recurs is a strict expected failure.
  This is a determinism check.
- drift, when the identities differ (the data changed and the adapters were retrained, or another GPU trained
  them): a miss is an expected failure that does not fail by itself; the merge gate (evals/verdict.py) decides, and
  the report names what changed and the command that re-records.
- a run with no record for its base model@runtime is judged against the nearest runtime's record of the same base
  model (evals/golden.py), as drift; with no record of the base model at all, misses are not judged and the merge
  gate fails once, naming the command that records one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from evals.policy import DECISION_FIELDS
from fixtures.atomic import write_json_atomic

FILENAME = "expectations.json"
FORMAT = 1
RECORD_COMMAND = "pytest evals --update-expectations"


class ExpectationsError(ValueError):
    pass


@dataclass(frozen=True)
class Expectations:
    golden_id: str
    path: Path
    candidates: dict  # name -> {run label -> {"identity", "adapter", "decisions": {case id -> decision}}}

    def runs(self, candidate: str) -> dict:
        return self.candidates.get(candidate, {})

    def decisions(self, candidate: str) -> dict:
        """{run label: {case id: decision}} for one candidate."""
        return {label: run["decisions"] for label, run in self.runs(candidate).items()}

    def identities(self, candidate: str) -> dict:
        return {label: run["identity"] for label, run in self.runs(candidate).items()}


def record_path(golden_dir: Path, golden_id: str) -> Path:
    return Path(golden_dir) / golden_id / FILENAME


def recorded_ids(golden_dir: Path) -> list[str]:
    """Every base model@runtime that has a record in this golden folder."""
    return sorted(p.parent.name for p in Path(golden_dir).glob(f"*/{FILENAME}"))


def load(golden_dir: Path, golden_id: str) -> Expectations | None:
    """The record for golden_id, or None when there is none. A malformed record is an error naming the file."""
    path = record_path(golden_dir, golden_id)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExpectationsError(f"{path}: not valid JSON ({exc}); re-record it with `{RECORD_COMMAND}`") from exc
    problem = _shape_problem(raw)
    if problem:
        raise ExpectationsError(f"{path}: {problem}; re-record it with `{RECORD_COMMAND}`")
    return Expectations(golden_id, path, raw["candidates"])


def _shape_problem(raw) -> str | None:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("candidates"), dict):
        return f"expected an object with format {FORMAT} and 'candidates'"
    for name, runs in raw["candidates"].items():
        if not isinstance(runs, dict) or not runs:
            return f"candidates.{name}: expected an object of runs"
        for label, run in runs.items():
            if not isinstance(run, dict) or not isinstance(run.get("identity"), str) or not isinstance(run.get("decisions"), dict):
                return f"candidates.{name}.{label}: needs 'identity' (string) and 'decisions' (object)"
    return None


def decision_of(prediction) -> dict:
    """What is recorded of one prediction: the parse outcome and the four decision fields."""
    return parsed_decision(prediction.parsed)


def parsed_decision(parsed) -> dict:
    """decision_of for a parse result (fixtures.parse.parse_output) that is not yet a Prediction."""
    got = parsed.obj if isinstance(parsed.obj, dict) else {}
    return {"parse": parsed.kind, **{f: got.get(f) for f in DECISION_FIELDS}}


def run_entry(identity: str, adapter: dict | None, predictions: dict) -> dict:
    return {"identity": identity, "adapter": adapter,
            "decisions": {cid: decision_of(p) for cid, p in sorted(predictions.items())}}


def write(golden_dir: Path, golden_id: str, candidates: dict, facts: dict) -> Path:
    """Write the whole record for golden_id (every candidate, every run), atomically."""
    path = record_path(golden_dir, golden_id)
    write_json_atomic(path, {
        "format": FORMAT, "golden_id": golden_id, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "facts": facts, "candidates": candidates,
    }, sort_keys=True)
    return path


def mode(expected: Expectations | None, candidate: str, identities: dict) -> str:
    """'none' (no record of this candidate), 'strict' (same runs, same identities) or 'drift'."""
    if expected is None or not expected.runs(candidate):
        return "none"
    return "strict" if expected.identities(candidate) == identities else "drift"


def check_case(request, candidate: str, case, runs: dict, expected: Expectations | None, updating: bool) -> None:
    """Apply the record to one asserted eval: pass, fail, or mark it an expected failure (see the module doc).

    runs: {run label: Prediction}. Called before the field-by-field assertion, which then fails on any miss."""
    __tracebackhide__ = True
    from evals.verdict import is_right

    current = {label: decision_of(p) for label, p in runs.items()}
    wrong = sorted(label for label, d in current.items() if not is_right(case.expected, d))
    if updating:
        if wrong:
            request.applymarker(pytest.mark.xfail(strict=False, reason=f"--update-expectations records this miss ({', '.join(wrong)})"))
        return
    how = mode(expected, candidate, {label: p.identity for label, p in runs.items()})
    if how == "none":
        if expected is None and wrong and not case.namespace:  # no record of this base model: test_gate fails once
                                                                # (a --cases row is never recorded: judged on its label)
            request.applymarker(pytest.mark.xfail(strict=False, reason=(
                f"no record for this base model, so a miss is not judged here; record one with `{RECORD_COMMAND}`")))
        return
    recorded = {label: d.get(case.key) for label, d in expected.decisions(candidate).items()}
    if how == "strict":
        if any(recorded.get(label) is None for label in current):
            return  # a case the record never saw: judged on its label alone
        moved = {label: (recorded[label], d) for label, d in current.items() if recorded[label] != d}
        if moved:
            pytest.fail(_moved_message(candidate, case, moved, expected.path), pytrace=False)
        if wrong:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"{expected.path.name}: recorded answer ({_fields(case, current, wrong)})"))
        return
    if wrong:
        was = "recorded right" if all(recorded.get(label) and is_right(case.expected, recorded[label]) for label in recorded) else "recorded wrong or unstable"
        request.applymarker(pytest.mark.xfail(strict=False, reason=(
            f"new adapters: wrong in {', '.join(wrong)} of {len(current)} run(s), {was}; the merge gate decides "
            f"(re-record with `{RECORD_COMMAND}`)")))


def _fields(case, current: dict, labels: list) -> str:
    parts = []
    for label in labels:
        d = current[label]
        bad = [f"{f}: {d.get(f)!r} for {case.expected[f]!r}" for f in DECISION_FIELDS if d.get(f) != case.expected[f]]
        if d.get("parse") != "ok":
            bad.insert(0, f"output {d.get('parse')}")
        parts.append(f"{label}: " + "; ".join(bad))
    return " | ".join(parts)


def _moved_message(candidate: str, case, moved: dict, path: Path) -> str:
    from tabulate import tabulate

    rows = []
    for label, (before, now) in sorted(moved.items()):
        for f in ("parse", *DECISION_FIELDS):
            if before.get(f) != now.get(f):
                rows.append([label, f, case.expected.get(f, "ok"), before.get(f), now.get(f)])
    return "\n".join([
        f"{candidate} answered {case.id} differently from {path}, with the same weights, prompt and generation "
        "settings: a determinism break (or a stale record).",
        f"case {case.id} at {case.where}; rules: {', '.join(case.rules) or '-'}",
        tabulate(rows, headers=["run", "field", "label", "recorded", "now"], tablefmt="simple"),
        f"If the change is intended, re-record with `{RECORD_COMMAND}` and commit {path.parent}/.",
    ])


def check_snapshot(candidate: str, cases, runs: dict, expected: Expectations | None, golden_id: str, golden_dir: Path) -> None:
    """Every recorded decision of this candidate on these cases, against this run's (see the module doc)."""
    __tracebackhide__ = True
    if expected is None:
        pytest.skip(f"no record for this base model ({golden_id}); test_gate fails once for it: record one with "
                    f"`{RECORD_COMMAND}`")
    if not expected.runs(candidate):  # a candidate added since the record was made: scored, its snapshot not judged
        pytest.xfail(f"{expected.path} holds no runs of {candidate} (added since it was recorded): re-record with "
                     f"`{RECORD_COMMAND}`, review and commit {expected.path.parent}/")
    how = mode(expected, candidate, {label: next(iter(p.values())).identity for label, p in runs.items() if p})
    recorded = expected.decisions(candidate)
    moved, unseen = [], []
    for label, preds in sorted(runs.items()):
        for cid, p in sorted(preds.items()):
            before = recorded.get(label, {}).get(cid)
            if before is None:
                unseen.append(f"{label}/{cid}")
            elif before != decision_of(p):
                now = decision_of(p)
                moved.append(f"{label} {cid}: " + "; ".join(
                    f"{f} {before.get(f)!r} -> {now.get(f)!r}" for f in ("parse", *DECISION_FIELDS) if before.get(f) != now.get(f)))
    if how == "strict" and moved:
        pytest.fail(f"{candidate}: {len(moved)} decision(s) differ from {expected.path} with the same weights, prompt and "
                    "generation settings (a determinism break or a stale record):\n" + "\n".join(moved[:50])
                    + f"\nIf intended, re-record with `{RECORD_COMMAND}`.", pytrace=False)
    if moved or unseen:
        pytest.xfail(f"{candidate} on {'new weights' if how == 'drift' else 'the recorded weights'}: {len(moved)} decision(s) "
                     f"differ from the record, {len(unseen)} case(s) not recorded; the merge gate decides; re-record "
                     f"with `{RECORD_COMMAND}`")


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(session, config, items) -> None:
    """--update-expectations writes the whole record from test_gate, so a run that deselects it would record nothing:
    refuse it rather than pass as a silent no-op (and a filtered run that keeps it still records every case)."""
    from fixtures.options import SETTINGS

    settings = config.stash.get(SETTINGS, None)
    if settings is None or not settings.update_expectations:
        return
    if not any(getattr(item, "originalname", item.name) == "test_gate" for item in items):
        raise pytest.UsageError(
            "--update-expectations re-records the whole record from evals/test_gate.py, which this run deselected "
            f"(-k, -m or the paths given). Run `{RECORD_COMMAND}` without filters.")
