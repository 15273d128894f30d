"""Every candidate's decisions on the test split, against the record in golden/<base model>@<runtime>/expectations.json.

Same weights and settings as recorded: any difference fails (a determinism check). New weights (the data changed):
differences are reported, and the merge gate (test_gate.py) decides. Re-record: pytest evals --update-expectations."""

import pytest

from evals.expectations import check_snapshot
from fixtures.candidates import candidate_names

pytestmark = pytest.mark.snapshot
NAMES = candidate_names()


@pytest.mark.parametrize("candidate", NAMES)
def test_snapshot(candidate, golden_id, predict_runs, splits, router_settings, expectations):
    if router_settings.cases:
        pytest.skip("the record pins the test split; --cases scores another file")
    if router_settings.update_expectations:
        pytest.skip("--update-expectations: test_gate.py writes the record")
    runs = predict_runs(candidate, splits["test"])
    check_snapshot(candidate, splits["test"], runs, expectations, golden_id, router_settings.golden_dir)
