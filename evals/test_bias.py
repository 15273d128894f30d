"""The notes' bias counterexamples, and metamorphic rewrites of test cases (rules in evals/metamorphic.py)."""

import pytest

from evals.asserts import assert_decision, assert_invariant, asserted
from evals.known_failures import expect_failure
from evals.policy import DECISION_FIELDS
from reports.scoring import make_record

pytestmark = pytest.mark.bias

PLATFORM_MAY_CHANGE = ("add-salesforce", "add-servicenow", "remove-salesforce", "remove-servicenow")


def test_bias(request, candidate_name, eval_case, bias_check, prediction, record_property, router_settings):
    group, source = bias_check
    record_property("router_record", make_record("bias", candidate_name, eval_case, prediction, bias_group=group))
    if not asserted(candidate_name, router_settings):
        return
    expect_failure(request, candidate_name, eval_case.id)
    if source is not None:
        fields = tuple(f for f in DECISION_FIELDS if f != "recommended_platform") if group in PLATFORM_MAY_CHANGE else DECISION_FIELDS
        assert_invariant(candidate_name, eval_case, prediction, request.getfixturevalue("predict_cases")(candidate_name, [source])[source.id], fields)
    assert_decision(candidate_name, eval_case, prediction)
