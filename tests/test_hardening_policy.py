"""must_pass entries and rule values are checked when the policy loads (issue #29 item 1): a misspelled key, a kind
that does not exist, a key of another kind, or a value outside the policy's own vocabulary names file:line: field."""

import json

import pytest

from evals.dataset import load_splits
from evals.metamorphic import bias_cases
from evals.policy import POLICY_PATH, POLICY_SCHEMA, PolicyError, load_policy
from tests.test_policy_file import edited_policy, line_with

PLATFORMS_NOT = "fields.recommended_platform: ['Glean', 'Databricks + governed dashboarding', 'Databricks app'"


def refused(path) -> str:
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    return str(err.value)


def test_a_misspelled_must_pass_key_is_an_unknown_field_and_the_real_one_missing(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["must_pass"][0].update(valuez=d["must_pass"][0].pop("values")))
    message, line = refused(path), line_with(path, '"valuez"')
    assert f"policy.json:{line}: field 'must_pass[0].valuez': unknown field (known: field, id, kind, text, values)" in message
    assert "field 'must_pass[0].values': missing (required)" in message


def test_an_unknown_must_pass_kind_fails_at_load(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["must_pass"][1].update(kind="match-lable"))
    line = line_with(path, '"match-lable"')
    assert (f"policy.json:{line}: field 'must_pass[1].kind': 'match-lable' is not one of "
            "['forbid-unless-named', 'match-label', 'same-as-source']") in refused(path)


@pytest.mark.parametrize(("index", "key", "value"), [
    (1, "bias_groups", ["injection"]),  # a same-as-source key on a match-label entry
    (2, "values", {"Glean": ["glean"]}),  # a forbid-unless-named key on a same-as-source entry
    (0, "when_expected", ["Glean"]),
])
def test_a_key_of_another_kind_is_refused(tmp_path, index, key, value):
    path = edited_policy(tmp_path, lambda d: d["must_pass"][index].update({key: value}))
    assert f"field 'must_pass[{index}].{key}': unknown field" in refused(path)


def test_each_kind_requires_its_own_key(tmp_path):
    path = edited_policy(tmp_path, lambda d: [d["must_pass"][1].pop("when_expected"), d["must_pass"][2].pop("bias_groups")])
    message = refused(path)
    assert "field 'must_pass[1].when_expected': missing (required)" in message
    assert "field 'must_pass[2].bias_groups': missing (required)" in message


def test_an_invariant_on_a_field_without_vocabulary_is_refused(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["must_pass"][1].update(field="needs_review"))
    assert "field 'must_pass[1].field': 'needs_review' is not one of ['tier', 'risk', 'recommended_platform']" in refused(path)


def test_a_bias_group_that_does_not_exist_is_refused(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["must_pass"][2]["bias_groups"].append("injections"))
    assert "field 'must_pass[2].bias_groups[1]': 'injections' is not one of" in refused(path)


def test_must_pass_ids_are_unique(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["must_pass"].append(dict(d["must_pass"][2])))
    assert "field 'must_pass[3].id': duplicate id 'injection-ignored' (first at must_pass[2])" in refused(path)


def test_a_rule_decision_outside_the_vocabulary_names_line_and_field(tmp_path):
    path = edited_policy(tmp_path, lambda d: d["rules"][0]["decision"].update(recommended_platform="Glen"))
    message = refused(path)
    line = line_with(path, '"Glen"')
    assert (f"policy.json:{line}: field 'rules[0].decision.recommended_platform': 'Glen' is not in the policy's "
            f"vocabulary for recommended_platform ({PLATFORMS_NOT}") in message


@pytest.mark.parametrize(("change", "field", "value"), [
    (lambda d: d["rules"][1]["decision"].update(risk="Medium"), "rules[1].decision.risk", "Medium"),
    (lambda d: d["rules"][7]["constraint"].update(tier="Trusted Builder"), "rules[7].constraint.tier", "Trusted Builder"),
    (lambda d: d["rules"][9]["constraint"]["recommended_platform_not"].append("Databricks app + SAP integration"),
     "rules[9].constraint.recommended_platform_not[2]", "Databricks app + SAP integration"),
    (lambda d: d["must_pass"][0]["values"].update({"Databricks app + SalesForce integration": ["sfdc"]}),
     "must_pass[0].values.Databricks app + SalesForce integration", "Databricks app + SalesForce integration"),
    (lambda d: d["must_pass"][1]["when_expected"].append("Databricks app + Jira integration"),
     "must_pass[1].when_expected[2]", "Databricks app + Jira integration"),
])
def test_constraint_and_invariant_values_are_checked_against_the_vocabulary(tmp_path, change, field, value):
    path = edited_policy(tmp_path, change)
    message = refused(path)
    assert f"policy.json:{line_with(path, value)}: field '{field}': {value!r} is not in the policy's vocabulary" in message


def test_the_schemas_bias_groups_are_the_groups_metamorphic_builds(policy):
    schema = json.loads(POLICY_SCHEMA.read_text(encoding="utf-8"))
    listed = schema["$defs"]["same-as-source"]["properties"]["bias_groups"]["items"]["enum"]
    assert sorted(listed) == sorted({group for group, _, _ in bias_cases(load_splits(policy)["test"])})


def test_the_shipped_policy_still_loads():
    assert [inv["id"] for inv in load_policy(POLICY_PATH).must_pass] == ["no-unnamed-integration", "named-integration",
                                                                          "injection-ignored"]
