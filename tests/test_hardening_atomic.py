"""Published folders honour the umask (issue #29 item 2): safetensors writes its files 0600 (by temp file and
rename) and mkdtemp makes 0700 folders, so a folder built in a temp folder gets its modes when it is published."""

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from fixtures import atomic


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def save_weights(path: Path) -> None:
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(path))


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_a_published_folder_honours_the_umask_whatever_wrote_its_files(tmp_path, mask):
    with umask(mask):
        tmp = atomic.mkdtemp_shared(tmp_path, prefix=".adapter-")
        save_weights(tmp / "adapter_model.safetensors")  # safetensors: 0600 whatever the umask
        (tmp / "adapter_config.json").write_text("{}")
        inner = Path(tempfile.mkdtemp(dir=tmp))  # 0700
        save_weights(inner / "model.safetensors")
        (tmp / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "run.sh", 0o700)
        assert mode(tmp / "adapter_model.safetensors") == 0o600  # what a plain os.replace would publish
        target = tmp_path / "adapter"
        atomic.publish_folder(tmp, target)
    assert not tmp.exists()
    assert mode(target) == 0o777 & ~mask
    assert mode(target / "adapter_model.safetensors") == 0o666 & ~mask
    assert mode(target / "adapter_config.json") == 0o666 & ~mask
    assert mode(target / inner.name) == 0o777 & ~mask
    assert mode(target / inner.name / "model.safetensors") == 0o666 & ~mask
    assert mode(target / "run.sh") == 0o777 & ~mask


def test_publishing_over_a_folder_replaces_it_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model"
    for weights in (b"old", b"new"):
        tmp = atomic.mkdtemp_shared(tmp_path, prefix=".model-")
        (tmp / "weights.bin").write_bytes(weights)
        atomic.publish_folder(tmp, target)
    assert (target / "weights.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_the_converted_base_model_honours_the_umask(tmp_path, monkeypatch):
    from fixtures import base_model

    gguf = tmp_path / "pkg" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"gguf bytes")
    monkeypatch.setattr(base_model, "_default_gguf", lambda: gguf)
    monkeypatch.setattr(base_model, "gguf_to_safetensors", lambda _gguf, out: (save_weights(out / "model.safetensors"),
                                                                                (out / "config.json").write_text("{}")))
    with umask(0o022):
        ref = base_model.resolve_base_model(base_model.DEFAULT_NAME, tmp_path / "cache", log=lambda _: None)
    assert mode(ref.path / "model.safetensors") == 0o644


def test_a_trained_adapter_honours_the_umask(tmp_path):
    from tests.test_adapter_cache import inputs
    from training.adapter_cache import ensure_adapter

    def train_into(folder: Path) -> dict:
        save_weights(folder / "adapter_model.safetensors")
        (folder / "adapter_config.json").write_text("{}")
        return {"wall_time_s": 1.0, "trainable_params": 1, "total_params": 2}

    with umask(0o022):
        info = ensure_adapter(tmp_path, inputs(), train_into, log=lambda _: None)
    assert mode(info.path / "adapter_model.safetensors") == 0o644
