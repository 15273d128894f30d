"""The policy file: read by everything else, and a broken one says where it is broken."""

import pytest

from evals.policy import PolicyError, load_policy
from evals.schema import output_schema, schema_errors


def test_vocabulary_is_exactly_the_controlled_strings(policy):
    assert policy.vocabulary["tier"] == ["Trusted Functional Builder", "Trusted Technical Analyst", "Trusted Technical Builder"]
    assert policy.vocabulary["risk"] == ["low", "medium", "high"]
    assert len(policy.vocabulary["recommended_platform"]) == 5
    assert {r.id for r in policy.rules} >= {"glean-only", "governed-analytics", "custom-build", "salesforce-integration",
                                            "servicenow-integration", "review-governed", "edge-glean-governed",
                                            "edge-both-systems", "edge-injection", "edge-crm-mention"}


def test_schema_takes_exactly_five_keys(policy):
    schema = output_schema(policy)
    assert schema["additionalProperties"] is False and len(schema["required"]) == 5
    good = {"tier": "Trusted Functional Builder", "risk": "low", "recommended_platform": "Glean", "needs_review": False, "reason": "No-code."}
    assert schema_errors(policy, good) == []
    assert [e[0] for e in schema_errors(policy, {**good, "extra": 1})] == ["extra"]


def test_every_rule_example_is_labelled_as_its_rule_says(policy):
    """Each decision rule's decision passes its own check, and modifiers never contradict review."""
    for rule in policy.decision_rules:
        assert policy.label_problems([rule.id], {**rule.decision, "reason": "x"}) == []
    assert policy.label_problems(["glean-only", "review-governed"], {**policy.rule("glean-only").decision, "reason": "x"})


@pytest.mark.parametrize(("text", "message"), [
    ('{"name": 1,\n oops}', r"p.json:2: malformed JSON"),
    ('{"name": 1}', r"p.json: missing field 'rules'"),
])
def test_a_broken_policy_file_names_where(tmp_path, text, message):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(tmp_path / "p.json")
