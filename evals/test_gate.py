"""The merge gate: the fine-tuned candidate's field accuracies on test against reports/baseline.json."""

import json

import pytest

from reports.baseline import BASELINE_PATH, accuracies, regressions, write_baseline

pytestmark = pytest.mark.gate


def test_fine_tuned_holds_the_baseline(predict_cases, splits, router_settings, golden_id):
    if router_settings.cases:
        pytest.skip("the baseline is for the test split; --cases scores another file")
    cases = splits["test"]
    current = accuracies(cases, predict_cases("fine-tuned", cases))
    if router_settings.update_baseline:
        write_baseline(current, golden_id, len(cases))
        pytest.skip(f"--update-baseline: wrote {BASELINE_PATH}")
    baseline = json.loads(BASELINE_PATH.read_text(encoding="utf-8")) if BASELINE_PATH.is_file() else {}
    if not baseline.get("fields"):
        pytest.fail(f"{BASELINE_PATH} holds no baseline; create it with `pytest evals -m gate --update-baseline`", pytrace=False)
    if baseline.get("base_model") != golden_id:
        pytest.skip(f"the committed baseline is for {baseline.get('base_model')!r}, this run is {golden_id!r}")
    drops = regressions(current, baseline["fields"], router_settings.baseline_tolerance)
    if drops:
        pytest.fail("fine-tuned fell below baseline by more than "
                    f"{router_settings.baseline_tolerance:.0%}:\n" + "\n".join(drops), pytrace=False)
