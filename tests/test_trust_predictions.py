"""A stored prediction is served only when its digest matches its contents (issue #29), and a prediction cache that
cannot be written says which folder and what to do, never a bare PermissionError from filelock."""

import json
import re

import pytest

from fixtures.atomic import write_json_atomic
from fixtures.candidates import load_candidates
from fixtures.generate import GenerationSettings
from fixtures.predictions import PredictionStore, predict

GEN = GenerationSettings(max_new_tokens=4, batch_size=4)


@pytest.fixture
def setup(tiny, policy, splits):
    model, tokenizer = tiny
    candidate = {c.name: c for c in load_candidates(policy, splits["train"])}["fine-tuned"]
    cases = sorted(splits["test"], key=lambda c: c.id)[:2]
    return lambda store, **k: predict(model, tokenizer, policy, candidate, cases, "k", store, GEN, **k), cases


def test_one_byte_changed_in_a_stored_raw_is_rejected_and_the_file_replaced(setup, tmp_path):
    run, cases = setup
    store = PredictionStore(tmp_path)
    first = run(store)
    path = store.path("k", cases[0].request)
    record = json.loads(path.read_text())
    raw = record["raw"]
    record["raw"] = raw[:-1] + chr(ord(raw[-1]) ^ 1) if raw else "x"  # one byte changed, still valid JSON
    path.write_text(json.dumps(record))

    lines = []
    again = run(store, log=lines.append)
    assert not again[cases[0].id].cached and again[cases[1].id].cached  # regenerated, not served as is
    assert again[cases[0].id].raw == first[cases[0].id].raw
    assert any(line.startswith(f"bad prediction record, regenerating: {path}: field 'digest': does not match")
               for line in lines), lines
    stored = json.loads(path.read_text())
    assert stored["raw"] == raw  # the bad file was replaced by the regenerated record
    assert PredictionStore(tmp_path).read("k", cases[0].request) == stored


def test_a_record_without_a_digest_is_regenerated(setup, tmp_path):
    run, cases = setup
    store = PredictionStore(tmp_path)
    run(store)
    path = store.path("k", cases[1].request)
    old = {k: v for k, v in json.loads(path.read_text()).items() if k != "digest"}
    write_json_atomic(path, {**old, "raw": "written by older code"}, indent=None)

    lines = []
    again = run(store, log=lines.append)
    assert not again[cases[1].id].cached and again[cases[1].id].raw != "written by older code"
    assert any(f"{path}: field 'digest': missing" in line for line in lines), lines
    assert "digest" in json.loads(path.read_text())


def test_every_stored_record_carries_the_digest_of_its_canonical_json(tmp_path):
    import hashlib

    record = {"raw": "é\"}", "new_tokens": 1, "candidate": "c", "case_id": "i", "batch_seconds": 0.1}
    stored = PredictionStore(tmp_path).write("k", "a request", record)
    on_disk = json.loads(PredictionStore(tmp_path).path("k", "a request").read_text(encoding="utf-8"))
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert on_disk == stored and on_disk["digest"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert PredictionStore(tmp_path).read("k", "a request") == on_disk


class ReadOnlyLock:
    def __init__(self, path, *a, **k):
        self.path = path

    def acquire(self, *a, **k):  # as filelock does in a folder it cannot create the lock file in
        raise PermissionError(13, "Permission denied", self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        return False


def test_a_read_only_cache_missing_a_prediction_names_the_folder_and_the_fix(setup, tmp_path, monkeypatch):
    import filelock

    run, cases = setup
    root = tmp_path / "cache" / "predictions"
    store = PredictionStore(root)
    run(store)
    store.path("k", cases[0].request).unlink()
    monkeypatch.setattr(filelock, "FileLock", ReadOnlyLock)
    with pytest.raises(RuntimeError, match=rf"prediction cache {re.escape(str(root))}: .*the cache cannot be written \(Permission denied: "
                                           rf".*; point --cache-dir at a writable folder"):
        run(store)


def test_a_prediction_that_cannot_be_stored_names_the_folder_and_the_fix(setup, tmp_path, monkeypatch):
    import fixtures.predictions as predictions_module

    run, _ = setup

    def refuse(path, *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(predictions_module, "write_json_atomic", refuse)
    with pytest.raises(RuntimeError, match=rf"prediction cache {re.escape(str(tmp_path))}: cannot store the prediction .*the cache cannot be "
                                           rf"written \(Permission denied: .*; point --cache-dir at a writable folder"):
        run(PredictionStore(tmp_path))


def test_a_cache_folder_that_cannot_be_created_names_the_folder_and_the_fix(setup, tmp_path):
    run, _ = setup
    (tmp_path / "a-file").write_text("")
    root = tmp_path / "a-file" / "predictions"  # mkdir fails here whoever runs the test, root included
    with pytest.raises(RuntimeError, match=rf"prediction cache {re.escape(str(root))}: .*cannot be written .*point --cache-dir at a writable"):
        run(PredictionStore(root))
