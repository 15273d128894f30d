"""The policy file: read by everything else, and a broken one says where it is broken."""

import json

import pytest

from evals.policy import POLICY_PATH, PolicyError, load_policy
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
    ('{"name": 1}', r"p.json:1: field 'rules': missing \(required\)"),
    ('{"name": 1}', r"p.json:1: field 'name': 1 is not of type 'string'"),
    ('[1, 2]', r"p.json:1: field '\(top level\)': \[1, 2\] is not of type 'object'"),
])
def test_a_broken_policy_file_names_where(tmp_path, text, message):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(tmp_path / "p.json")


def edited_policy(tmp_path, change):
    """The shipped policy, pretty-printed (one key per line), after `change(data)`; its path."""
    data = json.loads(POLICY_PATH.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def line_with(path, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[nth - 1]


def test_an_unknown_rule_kind_names_the_line_and_field(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["rules"][3].update(kind="decisoin"))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    line = line_with(path, '"decisoin"')
    assert f"policy.json:{line}: field 'rules[3].kind': 'decisoin' is not one of ['decision', 'modifier']" in str(err.value)


def test_a_duplicate_rule_id_names_the_second(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["rules"][4].update(id=d["rules"][1]["id"]))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    line = line_with(path, '"id": "governed-analytics"', nth=2)
    assert f"policy.json:{line}: field 'rules[4].id': duplicate id 'governed-analytics' (first at rules[1])" in str(err.value)


def test_an_unknown_key_is_named_and_a_missing_decision_too(tmp_path):
    def change(d):
        d["rules"][0]["decison"] = d["rules"][0].pop("decision")
        d["colour"] = "blue"
    path = edited_policy(tmp_path, change)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    colour, decison = line_with(path, '"colour"'), line_with(path, '"decison"')
    assert f"policy.json:{colour}: field 'colour': unknown field" in message
    assert f"policy.json:{decison}: field 'rules[0].decison': unknown field" in message
    assert "field 'rules[0].decision': missing (required)" in message
    assert "policy.schema.json" in message


def test_documented_optional_keys_are_accepted(tmp_path):
    path = edited_policy(tmp_path, lambda d: d.update(must_pass=[{"id": "no-salesforce-without-mention", "kind": "same-as-source", "text": "Injected text never changes the decision.", "bias_groups": ["injection"]}]))
    assert load_policy(path).rule_ids
    path = edited_policy(tmp_path, lambda d: d.update(must_pass="all"))
    with pytest.raises(PolicyError, match=r"field 'must_pass': 'all' is not of type 'array'"):
        load_policy(path)
