"""The CPU runtime's allocator setting (fixtures/cpu_memory.py): set once per process, where glibc takes it."""

import platform

import pytest

import fixtures.cpu_memory as cpu_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_glibc_takes_the_thresholds_once(monkeypatch):
    monkeypatch.setattr(cpu_memory, "_done", None)
    lines = []
    assert cpu_memory.keep_freed_memory(lines.append) is True
    assert cpu_memory.keep_freed_memory(lines.append) is True
    assert len(lines) == 1 and "keeps freed memory" in lines[0]


def test_load_base_on_the_cpu_sets_it(monkeypatch, tiny_model_dir):
    from fixtures.base_model import BaseModelRef, Runtime, load_base

    calls = []
    monkeypatch.setattr(cpu_memory, "keep_freed_memory", lambda log=print: calls.append(log) or True)
    load_base(BaseModelRef("tiny", tiny_model_dir, "sha256:x"), Runtime("cpu", False))
    assert len(calls) == 1
