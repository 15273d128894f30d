"""One test per (candidate, test case): the fine-tuned candidate must match the label field by field, in every run."""

import pytest

from evals.asserts import assert_decision, asserted
from evals.expectations import check_case
from reports.scoring import make_record

pytestmark = pytest.mark.policy


def test_policy(request, candidate_name, eval_case, prediction, record_property, router_settings):
    for run, p in prediction.items():
        record_property("router_record", make_record("policy", candidate_name, eval_case, p, run=run))
    if not asserted(candidate_name, router_settings):
        return
    check_case(request, candidate_name, eval_case, prediction, request.getfixturevalue("expectations"), router_settings.update_expectations)
    assert_decision(candidate_name, eval_case, prediction)
