"""The candidate registry is checked against evals/data/candidates.schema.json: errors say file:line: field."""

import json
from pathlib import Path

import pytest

from fixtures.candidates import REGISTRY_PATH, candidate_names, load_candidates, read_registry


def registry(tmp_path, entries) -> Path:
    path = tmp_path / "candidates.json"
    path.write_text("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n")  # one candidate per line: line = index + 2
    return path


GOOD = {"name": "terse", "prompt": "text:Answer in JSON.", "shots": "none", "adapter": "none"}


def test_the_shipped_registry_passes():
    assert candidate_names(REGISTRY_PATH) == [e["name"] for e in json.loads(REGISTRY_PATH.read_text())]


@pytest.mark.parametrize(("entries", "message"), [
    ([GOOD, {**GOOD, "prompt": "clever"}],
     "candidates.json:3: field '[1].prompt': 'clever' is not allowed: full-policy (schema and every rule), short"),
    ([GOOD, {**GOOD, "name": "other", "shots": "two"}],
     "candidates.json:3: field '[1].shots': 'two' is not one of ['none', 'one-per-rule']"),
    ([GOOD, {**GOOD, "name": "x"}, GOOD],
     "candidates.json:4: field '[2].name': duplicate name 'terse' (first at [0])"),
    ([{**GOOD, "shot": "none"}], "candidates.json:2: field '[0].shot': unknown field (known: about, adapter, constrain,"),
    ([{"prompt": "short"}], "candidates.json:2: field '[0].name': missing (required)"),
    ([{**GOOD, "constrain": "grammar"}], "candidates.json:2: field '[0].constrain': 'grammar' is not one of ['none', 'schema']"),
])
def test_a_broken_registry_names_line_and_field(tmp_path, policy, splits, entries, message):
    path = registry(tmp_path, entries)
    for load in (lambda: read_registry(path), lambda: candidate_names(path), lambda: load_candidates(policy, splits["train"], path)):
        with pytest.raises(ValueError) as err:
            load()
        assert message in str(err.value)


def test_the_top_level_must_be_a_list(tmp_path):
    path = tmp_path / "candidates.json"
    path.write_text('{"name": "terse"}')
    with pytest.raises(ValueError, match=r"candidates.json:1: field '\(top level\)': .* is not of type 'array'"):
        read_registry(path)


def test_documented_optional_keys_are_accepted(tmp_path):
    path = registry(tmp_path, [{**GOOD, "constrain": "schema", "about": "JSON-constrained decoding"}])
    assert candidate_names(path) == ["terse"]


def test_names_may_hold_a_plus(tmp_path):
    assert candidate_names(registry(tmp_path, [{**GOOD, "name": "base+schema"}])) == ["base+schema"]
    with pytest.raises(ValueError, match=r"candidates.json:2: field '\[0\].name'"):
        read_registry(registry(tmp_path, [{**GOOD, "name": "+schema"}]))
