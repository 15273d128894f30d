"""Every candidate's decisions on the test split, pinned in golden/ (update: pytest evals --snapshot-update)."""

import pytest

from evals.golden import golden_extension, pinned_decisions
from fixtures.candidates import candidate_names

pytestmark = pytest.mark.snapshot
NAMES = candidate_names()


@pytest.mark.parametrize("candidate", NAMES)
def test_snapshot(candidate, snapshot, golden_id, predict_cases, splits, router_settings):
    if router_settings.cases:
        pytest.skip("golden snapshots pin the test split; --cases scores another file")
    cases = splits["test"]
    assert pinned_decisions(cases, predict_cases(candidate, cases)) == snapshot.use_extension(golden_extension(router_settings.golden_dir / golden_id))
