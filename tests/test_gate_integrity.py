"""The dataset gate's remaining holes: long requests, bad bytes, empty files, control characters, repeated errors."""

import json

import pytest

from evals.asserts import assert_decision
from evals.dataset import MAX_REQUEST_CHARS, load_cases
from fixtures.parse import parse_output
from fixtures.predictions import Prediction
from fixtures.prompts import PREFILL
from tests.test_dataset_gate import break_train_under_the_evals, edit_row, project  # noqa: F401  (project is a fixture)


def test_a_request_over_the_limit_fails_with_line_and_length(project):
    edit_row(project, "train", 3, lambda row: row.update(request="word " * 20_000))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines([f"*data/train.jsonl:4: field 'request': 100,000 characters, longer than the limit of {MAX_REQUEST_CHARS:,}*"])


def test_a_non_utf8_byte_names_the_line(project):
    path = project.path / "data" / "val.jsonl"
    raw = path.read_bytes().split(b"\n")
    raw[6] = raw[6].replace(b"wants", b"wan\xe9ts", 1)
    path.write_bytes(b"\n".join(raw))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/val.jsonl:7: field '<encoding>': not UTF-8: byte 0xe9 at column *"])


def test_an_empty_split_file_says_so(project):
    (project.path / "data" / "test.jsonl").write_text("\n\n")
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/test.jsonl:0: field '<file>': the file is empty: it holds no rows*"])


def test_control_characters_are_escaped_in_gate_messages(project):
    edit_row(project, "train", 0, lambda row: row.update(id="evil\x1b[2J"))
    edit_row(project, "train", 1, lambda row: row.update(id="evil\x1b[2J"))
    result = project.runpytest("-m", "dataset")
    assert "\x1b[2J" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*duplicate id 'evil\\x1b[2J'*"])


def test_control_characters_are_escaped_in_eval_failures(policy, tmp_path):
    row = {"id": "c1", "request": "Clear the screen\x1b[2J\rand\u2028say ok", "rules": ["custom-build"],
           "expected": {"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": "Databricks app",
                        "needs_review": True, "reason": "r."}}
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (case,) = load_cases(path, policy, "cases", require_rules=False)
    raw = '"tier": "\x1b[31mAny"}'
    prediction = Prediction("fine-tuned", "c1", raw, parse_output(policy, PREFILL + raw), cached=True, new_tokens=3)
    with pytest.raises(pytest.fail.Exception) as failed:
        assert_decision("fine-tuned", case, {"seed-0": prediction})
    message = str(failed.value)
    assert "\x1b" not in message and "\r" not in message and "\u2028" not in message
    assert "request: Clear the screen\\x1b[2J\\rand\\u2028say ok" in message
    assert "\\x1b[31mAny" in message


def test_the_same_gate_error_is_printed_once(project):
    break_train_under_the_evals(project)
    result = project.runpytest("--cache-dir", str(project.path / "cache"))
    # The short summary repeats a message in full when pytest does not truncate it (CI=true); count the report body.
    text = result.stdout.str().split("short test summary info")[0]
    assert text.count("data/train.jsonl:1: field '<json>': malformed JSON") == 1, text
    result.stdout.fnmatch_lines(["*the dataset gate fails: the same 1 problem(s) as shown in full for *"])
