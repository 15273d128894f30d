"""Every way model text can fail to be a decision is recorded with its kind, and parsing never raises."""

import pytest

from fixtures.parse import first_json_object, parse_output

GOOD = '{"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": "Databricks app", "needs_review": true, "reason": "Writes back."}'


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (GOOD, "ok"),
        (GOOD + "<|im_end|> trailing chatter {", "ok"),
        ("assistant assistant assistant", "no_json"),
        ('{"tier": "Trusted Technical Builder", "risk": "hi', "truncated"),
        ('{"tier": Trusted}', "invalid_json"),
        (GOOD[:-1] + ', "confidence": 0.9}', "extra_keys"),
        ('{"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": "Databricks app", "reason": "x"}', "missing_keys"),
        (GOOD.replace("true", '"yes"'), "wrong_type"),
        (GOOD.replace("Databricks app", "Databricks + Tableau"), "unknown_enum"),
        (GOOD.replace("Writes back.", " "), "invalid_value"),
        # raw_decode: the first object counts, whatever follows it
        ("Sure! " + GOOD + " " + GOOD.replace("high", "low"), "ok"),
        ("```json\n" + GOOD + "\n```", "ok"),
        (GOOD[:-1], "truncated"),  # stopped before the closing brace
        (GOOD[:40] + '\n\nI hope this helps', "truncated"),  # no brace closes it
        ('{"reason": "a } brace", "tier": "Trusted', "truncated"),  # ends inside a string that holds a brace
        ('{"tier": "x",}', "invalid_json"),  # trailing comma
        ("{'tier': 'x'}", "invalid_json"),  # single quotes
        ('{"tier": "x"} ', "missing_keys"),
        ("{}", "missing_keys"),
        ("[" + GOOD + "]", "ok"),  # the object inside a list is still the first object
        ("", "no_json"),
    ],
)
def test_parse_kinds(policy, text, kind):
    parsed = parse_output(policy, text)
    assert parsed.kind == kind
    assert parsed.schema_valid == (kind == "ok")
    assert parsed.json_valid == (kind not in ("no_json", "truncated", "invalid_json"))


def test_braces_inside_strings_do_not_end_the_object():
    status, span = first_json_object('{"reason": "a } inside", "x": "\\" }"} tail')
    assert status == "found" and span.endswith('"}')


def test_nested_and_escaped_braces_end_the_object_where_json_does():
    status, span = first_json_object('noise {"a": {"b": "}"}, "c": "\\u007b"} {"d": 1}')
    assert status == "found" and span == '{"a": {"b": "}"}, "c": "\\u007b"}'


@pytest.mark.parametrize("text", ["no object", '{"a": 1', '{"a": x}'])
def test_no_span_when_no_object_decodes(text):
    assert first_json_object(text)[1] is None


def test_invalid_json_says_where(policy):
    parsed = parse_output(policy, 'x {"tier": Trusted}')
    assert parsed.errors == ("invalid_json: Expecting value at column 10",)


def test_wrong_values_still_score_the_fields_that_are_there(policy):
    from reports.scoring import score

    parsed = parse_output(policy, GOOD.replace("Databricks app", "Databricks + Tableau"))
    expected = {"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": "Databricks app", "needs_review": True}
    got = score(expected, parsed.obj, parsed.json_valid, parsed.schema_valid)
    assert got == {"json_valid": True, "schema_valid": False, "tier": True, "risk": True,
                   "recommended_platform": False, "needs_review": True, "exact": False}


def test_a_string_true_is_not_the_boolean_true():
    from reports.scoring import score

    expected = {"tier": "a", "risk": "b", "recommended_platform": "c", "needs_review": True}
    assert not score(expected, {**expected, "needs_review": "true"}, True, False)["needs_review"]
