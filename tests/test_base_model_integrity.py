"""The converted base model folder: a manifest of sha256 and sizes, checked on load, rebuilt on mismatch.

The GGUF conversion is replaced by a fake that writes known bytes, so these run in milliseconds.
"""

import json
import os
import time
from pathlib import Path

import pytest

from fixtures import base_model
from fixtures.base_model import MANIFEST, STAMP, sha256_folder, verify_converted


@pytest.fixture
def converter(tmp_path, monkeypatch):
    """A fake GGUF and a fake conversion; state['weights'] is what the next conversion writes."""
    gguf = tmp_path / "pkg" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"gguf bytes")
    state = {"calls": 0, "weights": b"w" * 4096}

    def convert(_gguf, out: Path):
        state["calls"] += 1
        (out / "model.safetensors").write_bytes(state["weights"])
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(base_model, "_default_gguf", lambda: gguf)
    monkeypatch.setattr(base_model, "gguf_to_safetensors", convert)
    return state


def resolve(tmp_path, lines=None):
    return base_model.resolve_base_model(base_model.DEFAULT_NAME, tmp_path / "cache", log=(lines if lines is not None else []).append)


def test_identity_is_the_converted_bytes(tmp_path, converter):
    ref = resolve(tmp_path)
    files = json.loads((ref.path / MANIFEST).read_text())["files"]
    assert files["model.safetensors"]["size"] == 4096 and len(files["model.safetensors"]["sha256"]) == 64
    assert ref.identity == "sha256:" + sha256_folder(ref.path)
    assert resolve(tmp_path) == ref and converter["calls"] == 1


def test_damaged_weights_of_the_same_size_are_rebuilt(tmp_path, converter):
    """The probe: bytes overwritten inside model.safetensors. The write changes its mtime, so hashes are checked."""
    ref = resolve(tmp_path)
    time.sleep(0.05)  # past the file system's timestamp granularity, as any real write after a conversion is
    with open(ref.path / "model.safetensors", "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 1000)
    lines = []
    again = resolve(tmp_path, lines)
    assert converter["calls"] == 2 and again.identity == ref.identity
    assert (again.path / "model.safetensors").read_bytes() == converter["weights"]
    assert any("model.safetensors does not match its sha256" in line for line in lines), lines


def test_a_size_change_is_caught_on_every_load(tmp_path, converter):
    ref = resolve(tmp_path)
    path = ref.path / "model.safetensors"
    st = path.stat()
    path.write_bytes(b"short")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert "model.safetensors is 5 bytes, the manifest says 4096" == verify_converted(ref.path)


def test_hash_schedule(tmp_path, converter):
    """Same size and mtime (a forged write) passes until the manifest is newer than the stamp or the stamp is old."""
    ref = resolve(tmp_path)
    path = ref.path / "model.safetensors"
    st = path.stat()
    path.write_bytes(b"x" * 4096)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify_converted(ref.path) is None  # sizes and mtimes match the stamp: hashes not read
    later = time.time() + base_model.VERIFY_HASHES_EVERY_S + 1
    assert "does not match its sha256" in verify_converted(ref.path, now=later)
    stamp = json.loads((ref.path / STAMP).read_text())
    os.utime(ref.path / MANIFEST, (stamp["checked"] + 10, stamp["checked"] + 10))
    assert "does not match its sha256" in verify_converted(ref.path)


def test_new_converted_bytes_mean_a_new_identity(tmp_path, converter):
    """A prediction never outlives its weights: predictions and adapters are keyed by what was converted."""
    ref = resolve(tmp_path)
    (ref.path / "model.safetensors").write_bytes(b"damaged")
    converter["weights"] = b"v" * 4096  # e.g. another transformers version converts differently
    assert resolve(tmp_path).identity != ref.identity


def test_a_folder_without_manifest_is_converted_again(tmp_path, converter):
    ref = resolve(tmp_path)
    (ref.path / MANIFEST).unlink()
    lines = []
    resolve(tmp_path, lines)
    assert converter["calls"] == 2 and any("no valid router-manifest.json" in line for line in lines)


def test_an_intact_folder_in_a_read_only_cache_loads(tmp_path, converter, monkeypatch):
    import filelock

    ref = resolve(tmp_path)
    (ref.path / STAMP).unlink()  # hashes are checked, and the stamp cannot be written: fine

    class ReadOnlyLock:
        def __init__(self, path, *a, **k):
            raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(filelock, "FileLock", ReadOnlyLock)
    monkeypatch.setattr(base_model, "write_json_atomic", ReadOnlyLock)
    assert resolve(tmp_path) == ref
    (ref.path / "model.safetensors").write_bytes(b"bad")
    with pytest.raises(base_model.BaseModelError, match="cannot be written to rebuild it"):
        resolve(tmp_path)


def test_an_interrupted_conversion_leaves_nothing_behind(tmp_path, converter):
    root = tmp_path / "cache" / "base-models"
    ref = resolve(tmp_path)
    stale = root / f".{ref.path.name}-killed"
    stale.mkdir()
    (ref.path / "model.safetensors").write_bytes(b"bad")
    resolve(tmp_path)
    assert not stale.exists() and not [p for p in root.iterdir() if p.name.startswith(".")]


def test_identity_does_not_depend_on_the_converting_transformers_version(tmp_path, monkeypatch, converter):
    """save_pretrained writes its own version into config.json and generation_config.json; two environments that
    convert the same GGUF to the same weights must get one identity, or every adapter key differs between them."""
    identities = []
    for version in ("5.23.0", "5.24.0"):
        def convert(_gguf, out: Path, version=version):
            (out / "model.safetensors").write_bytes(b"w" * 4096)
            (out / "config.json").write_text(json.dumps({"hidden_size": 8, "transformers_version": version}))
            (out / "generation_config.json").write_text(json.dumps({"eos_token_id": 2, "transformers_version": version}))

        monkeypatch.setattr(base_model, "gguf_to_safetensors", convert)
        ref = base_model.resolve_base_model(base_model.DEFAULT_NAME, tmp_path / version, log=[].append)
        assert "transformers_version" not in (ref.path / "config.json").read_text()
        assert json.loads((ref.path / "config.json").read_text()) == {"hidden_size": 8}
        identities.append(ref.identity)
    assert identities[0] == identities[1]
