"""A stored prediction of the wrong shape is named in a log line and generated again, never a bare KeyError."""

import os

import pytest

from fixtures.candidates import load_candidates
from fixtures.generate import GenerationSettings
from fixtures.predictions import PredictionStore, predict, record_problem

GEN = GenerationSettings(max_new_tokens=4, batch_size=4)


@pytest.mark.parametrize("content, why", [
    (b"{}", "field 'raw': missing"),
    (b"[1, 2]", "expected an object, got list"),
    (b'{"raw": 5}', "field 'raw': expected str, got int"),
    (b'{"raw": "x", "new_tokens": true, "candidate": "c", "case_id": "i"}', "field 'new_tokens': expected int, got bool"),
    (b"\xff\xfe", "unreadable (UnicodeDecodeError"),
    (b'{"raw": ', "unreadable (JSONDecodeError"),
])
def test_a_bad_record_is_regenerated_and_named(tiny, policy, splits, tmp_path, content, why):
    model, tokenizer = tiny
    candidate = {c.name: c for c in load_candidates(policy, splits["train"])}["fine-tuned"]
    cases = sorted(splits["test"], key=lambda c: c.id)[:2]
    store = PredictionStore(tmp_path)
    predict(model, tokenizer, policy, candidate, cases, "k", store, GEN)
    bad = store.path("k", cases[0].request)
    bad.write_bytes(content)

    lines = []
    again = predict(model, tokenizer, policy, candidate, cases, "k", store, GEN, log=lines.append)
    assert not again[cases[0].id].cached and again[cases[1].id].cached
    assert any(line.startswith(f"bad prediction record, regenerating: {bad}: ") and why in line for line in lines), lines
    assert record_problem(PredictionStore(tmp_path).read("k", cases[0].request)) is None


def test_records_honour_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        PredictionStore(tmp_path).write("k", "a request", {"raw": "x", "new_tokens": 1, "candidate": "c", "case_id": "i"})
    finally:
        os.umask(old)
    assert PredictionStore(tmp_path).path("k", "a request").stat().st_mode & 0o777 == 0o664
