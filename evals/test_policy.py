"""One test per (candidate, test case): the fine-tuned candidate must match the label field by field."""

import pytest

from evals.asserts import assert_decision, asserted
from evals.known_failures import expect_failure
from reports.scoring import make_record

pytestmark = pytest.mark.policy


def test_policy(request, candidate_name, eval_case, prediction, record_property, router_settings):
    record_property("router_record", make_record("policy", candidate_name, eval_case, prediction))
    if not asserted(candidate_name, router_settings):
        return
    expect_failure(request, candidate_name, eval_case.id)
    assert_decision(candidate_name, eval_case, prediction)
