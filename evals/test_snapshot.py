"""Every candidate's decisions on the test split, pinned in golden/ (update: pytest evals --snapshot-update)."""

import pytest

from evals.golden import golden_extension, pinned_decisions
from fixtures.candidates import candidate_names

pytestmark = pytest.mark.snapshot
NAMES = candidate_names()


@pytest.mark.parametrize("candidate", NAMES)
def test_snapshot(request, candidate, snapshot, golden_id, predictor, splits, router_settings):
    if router_settings.cases:
        pytest.skip("golden snapshots pin the test split; --cases scores another file")
    adapter = request.getfixturevalue("adapter") if predictor.candidates[candidate].adapter == "trained" else None
    cases = splits["test"]
    predictions = {c.id: predictor.predict(candidate, c, adapter) for c in cases}
    assert pinned_decisions(cases, predictions) == snapshot.use_extension(golden_extension(golden_id))
