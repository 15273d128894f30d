"""The notes' bias counterexamples, and metamorphic rewrites of test cases (rules in evals/metamorphic.py)."""

import pytest

from evals.asserts import assert_decision, assert_invariant, asserted
from evals.expectations import check_case
from evals.policy import DECISION_FIELDS
from reports.scoring import make_record

pytestmark = pytest.mark.bias

PLATFORM_MAY_CHANGE = ("add-salesforce", "add-servicenow", "remove-salesforce", "remove-servicenow")


def test_bias(request, candidate_name, eval_case, bias_check, prediction, record_property, router_settings):
    group, source = bias_check
    for run, p in prediction.items():
        record_property("router_record", make_record("bias", candidate_name, eval_case, p, bias_group=group, run=run))
    if not asserted(candidate_name, router_settings):
        return
    check_case(request, candidate_name, eval_case, prediction, request.getfixturevalue("expectations"), router_settings.update_expectations)
    if source is not None:
        fields = tuple(f for f in DECISION_FIELDS if f != "recommended_platform") if group in PLATFORM_MAY_CHANGE else DECISION_FIELDS
        before = request.getfixturevalue("predict_runs")(candidate_name, [source])
        assert_invariant(candidate_name, eval_case, prediction, {run: preds[source.key] for run, preds in before.items()}, fields)
    assert_decision(candidate_name, eval_case, prediction)
