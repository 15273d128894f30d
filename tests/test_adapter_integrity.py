"""The adapter cache trusts nothing it has not checked: manifest schema, stale temp folders, read-only caches, key inputs."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_adapter_cache import fake_trainer, inputs, start_slow_build
from training import adapter_cache
from training.adapter_cache import MANIFEST, adapter_key, check_adapter, code_identity, ensure_adapter



@pytest.mark.parametrize("manifest, why", [
    (b"[]", "manifest field <top level>: [] is not of type 'object'"),
    (b"\xff\xfe{}", "manifest is not UTF-8"),
    ("no-files", "manifest field <top level>: 'files' is a required property"),
    ("empty-files", "manifest field files: {} should be non-empty"),
    ("files-list", "manifest field files: [] is not of type 'object'"),
])
def test_a_manifest_outside_its_schema_means_rebuild_with_the_reason(tmp_path, manifest, why):
    calls, lines = [], []
    info = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None)
    if isinstance(manifest, str):
        good = json.loads((info.path / MANIFEST).read_text())
        good["files"] = {"no-files": None, "empty-files": {}, "files-list": []}[manifest]
        if manifest == "no-files":
            del good["files"]
        manifest = json.dumps(good).encode()
    (info.path / MANIFEST).write_bytes(manifest)
    (info.path / "adapter_model.safetensors").write_bytes(b"corrupted")  # without files, nothing would notice this
    assert why in check_adapter(info.path, info.key)
    again = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lines.append)
    assert again.trained_now and len(calls) == 2
    assert any(line.startswith(f"adapter {info.key[:12]}: rebuilding (") and why in line for line in lines), lines
    assert (again.path / "adapter_model.safetensors").read_bytes() == b"weights"


def test_key_has_torch_version_and_training_code():
    assert "torch" in inputs()["versions"]
    assert inputs()["code"] == code_identity()


def test_editing_the_training_code_changes_the_key(tmp_path, monkeypatch):
    for name in adapter_cache.TRAINING_CODE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    monkeypatch.setattr(adapter_cache, "ROOT", tmp_path)
    monkeypatch.setattr(adapter_cache.code_identity, "__defaults__", (adapter_cache.TRAINING_CODE, tmp_path))
    before = adapter_key(inputs())
    (tmp_path / "training/recipe.py").write_text("x = 2\n")
    assert adapter_key(inputs()) != before


def hold_lock(lock_path: Path) -> subprocess.Popen:
    script = f"from filelock import FileLock; import time; l = FileLock({str(lock_path)!r}); l.acquire(); print('held', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_sigterm_leaves_a_temp_folder_that_the_next_build_removes(tmp_path):
    proc = start_slow_build(tmp_path)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait()
    key32 = adapter_key(inputs())[:32]
    assert [p.name for p in tmp_path.glob(f".{key32}-*")]  # what SIGTERM leaves behind

    # Another key's build, alive, holds its lock: its temp folder must survive; a dead one's is removed.
    alive, dead = "a" * 32, "b" * 32
    (tmp_path / f".{alive}-x").mkdir()
    (tmp_path / f".{dead}-y").mkdir()
    holder = hold_lock(tmp_path / f"{alive}.lock")
    try:
        lines = []
        ensure_adapter(tmp_path, inputs(), fake_trainer([]), log=lines.append)
    finally:
        holder.kill()
        holder.wait()
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [f".{alive}-x"]
    assert any("removed 2 temporary adapter folder(s)" in line for line in lines), lines


def test_a_read_only_cache_holding_the_adapter_works(tmp_path, monkeypatch):
    """No lock is taken when the adapter is cached and intact (a lock file could not be created there)."""
    import filelock

    ensure_adapter(tmp_path, inputs(), fake_trainer([]), log=lambda _: None)

    class ReadOnlyLock:
        def __init__(self, path, *a, **k):
            raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(filelock, "FileLock", ReadOnlyLock)
    info = ensure_adapter(tmp_path, inputs(), fake_trainer([]), log=lambda _: None)
    assert not info.trained_now
    (info.path / "adapter_model.safetensors").write_bytes(b"damaged")
    with pytest.raises(adapter_cache.AdapterNotCached, match="does not match its checksum, and the cache cannot be written"):
        ensure_adapter(tmp_path, inputs(), fake_trainer([]), log=lambda _: None)


def test_adapter_files_honour_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        info = ensure_adapter(tmp_path / "cache", inputs(), fake_trainer([]), log=lambda _: None)
    finally:
        os.umask(old)
    assert info.path.stat().st_mode & 0o777 == 0o775
    assert (info.path / MANIFEST).stat().st_mode & 0o777 == 0o664
