"""Data files refuse what json.loads accepts silently (issue #29 items 3 and 4): a string that is not valid Unicode
(a lone surrogate written "\\ud800"), a key given twice, an unknown key at the top of a split's row, and a JSON file
that is not UTF-8. Each is named by file:line: field, where the old code failed later or not at all."""

import json

import pytest

from evals.cases_file import CasesFileWarning, load_cases_file
from evals.dataset import DatasetError, read_cases
from evals.policy import POLICY_PATH, PolicyError, load_policy
from fixtures.candidates import REGISTRY_PATH, read_registry

GOOD = json.loads(POLICY_PATH.with_name("train.jsonl").read_text(encoding="utf-8").splitlines()[0])
SURROGATE = "the value is not valid Unicode: a lone surrogate"


@pytest.fixture
def split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # messages show paths relative to the working directory

    def write(*lines: str):
        path = tmp_path / "train.jsonl"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path
    return write


def problems(policy, path) -> list[str]:
    cases, found = read_cases(path, policy, "train")
    return [str(p) for p in found]


def good_line(**over) -> str:
    return json.dumps({**GOOD, "id": f"x_{len(over)}", **over})


def test_a_lone_surrogate_in_a_request_names_file_line_and_field(policy, split):
    # json.dumps writes "\ud800" as the six characters of its escape: what a tool that mangles text leaves behind.
    path = split(good_line(), good_line(request="A Glean agent that answers questions \ud800 from the wiki."))
    assert problems(policy, path) == [f"train.jsonl:2: field 'request': {SURROGATE} \\ud800 at character 38 (a \\ud800-\\udfff "
                                      f"escape must be half of a pair); it cannot be written as UTF-8"]


def test_a_lone_surrogate_anywhere_in_a_row_is_refused(policy, split):
    row = {**GOOD, "expected": {**GOOD["expected"], "reason": "fine \udfff"}, "rules": ["glean-only"]}
    keyed = {**GOOD, "id": "k", "\ud83d": 1}
    found = problems(policy, split(json.dumps(row), json.dumps(keyed)))
    assert found[0].startswith(f"train.jsonl:1: field 'expected.reason': {SURROGATE} \\udfff at character 6")
    assert found[1].startswith("train.jsonl:2: field '\\ud83d': the key is not valid Unicode: a lone surrogate \\ud83d")


def test_a_surrogate_pair_is_one_character_and_fine(policy, split):
    path = split(good_line(request="A Glean agent that answers questions \U0001F600 from the wiki."))
    assert problems(policy, path) == []


def test_a_lone_surrogate_in_a_cases_file_is_refused(policy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "request": "Glean \ud800 agent", **{k: GOOD["expected"][k] for k in
                                ("tier", "risk", "recommended_platform", "needs_review")}}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"cases.jsonl:1: field 'request': the value is not valid Unicode"):
        load_cases_file(path, policy)


@pytest.mark.parametrize(("text", "field"), [
    ('{"id": "a", "id": "b", "request": "r", "expected": {}, "rules": []}', "id"),
    ('{"id": "a", "request": "r", "expected": {"tier": "x", "tier": "y"}, "rules": []}', "expected.tier"),
])
def test_a_key_given_twice_in_a_row_is_refused(policy, split, text, field):
    assert problems(policy, split(text)) == [
        f"train.jsonl:1: field '{field}': key {field.split('.')[-1]!r} given twice in one object (JSON keeps only the last); give it once"]


def test_a_key_given_twice_in_a_cases_row_is_refused(policy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    decision = {k: GOOD["expected"][k] for k in ("tier", "risk", "recommended_platform", "needs_review")}
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "request": "A Glean agent.", **decision})[:-1] + ', "risk": "high"}\n')
    with pytest.raises(DatasetError, match=r"cases.jsonl:1: field 'risk': key 'risk' given twice"):
        load_cases_file(path, policy)


def test_an_unknown_top_level_key_in_a_split_row_is_refused(policy, split):
    path = split(good_line(), good_line(note="checked by Ana"), good_line(rule=["glean-only"]))
    assert problems(policy, split(*path.read_text().splitlines())) == [
        "train.jsonl:2: field 'note': unknown field 'note' (a row has id, request, expected, rules)",
        "train.jsonl:3: field 'rule': unknown field 'rule' (a row has id, request, expected, rules)",
    ]


def test_an_unknown_key_in_a_cases_file_stays_a_warning(policy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    decision = {k: GOOD["expected"][k] for k in ("tier", "risk", "recommended_platform", "needs_review")}
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "request": "A Glean agent.", "ticket": "T-1", **decision}) + "\n")
    with pytest.warns(CasesFileWarning, match="unknown key 'ticket'"):
        assert [c.id for c in load_cases_file(path, policy)] == ["c1"]


def latin1_copy(source, tmp_path):
    """The file with one 'e' of its text on line 3 written as Latin-1 \\xe9: what an editor set to cp1252 saves."""
    lines = source.read_bytes().split(b"\n")
    assert b'"' in lines[2]
    at = lines[2].rindex(b'"')
    lines[2] = lines[2][:at] + b"\xe9" + lines[2][at:]
    path = tmp_path / source.name
    path.write_bytes(b"\n".join(lines))
    return path, at + 1


def test_a_policy_file_that_is_not_utf8_names_line_and_column(tmp_path):
    path, column = latin1_copy(POLICY_PATH, tmp_path)
    with pytest.raises(PolicyError, match=rf"policy.json:3: not UTF-8: byte 0xe9 at column {column} \(save the file as UTF-8\)"):
        load_policy(path)


def test_a_candidates_file_that_is_not_utf8_names_line_and_column(tmp_path):
    path, column = latin1_copy(REGISTRY_PATH, tmp_path)
    with pytest.raises(ValueError, match=rf"candidates.json:3: not UTF-8: byte 0xe9 at column {column}"):
        read_registry(path)


def test_a_key_given_twice_in_the_policy_names_its_second_line(tmp_path):
    text = POLICY_PATH.read_text(encoding="utf-8").replace('"version": 1,', '"version": 1,\n  "version": 2,', 1)
    (tmp_path / "policy.json").write_text(text, encoding="utf-8")
    line = text.splitlines().index('  "version": 2,') + 1
    with pytest.raises(PolicyError, match=rf"policy.json:{line}: field 'version': key 'version' given twice"):
        load_policy(tmp_path / "policy.json")


def test_a_lone_surrogate_in_the_policy_is_refused(tmp_path):
    text = POLICY_PATH.read_text(encoding="utf-8").replace('"short_system_prompt": "You route', '"short_system_prompt": "\\udc80You route')
    (tmp_path / "policy.json").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"field 'short_system_prompt': the value is not valid Unicode: a lone surrogate \\udc80"):
        load_policy(tmp_path / "policy.json")
