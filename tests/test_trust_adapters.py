"""A candidate's external adapter (issue #29): a local folder of adapter_config.json and adapter_model.safetensors,
never a pickle PEFT would torch.load, its identity every file PEFT can load from it, and any other path an error
naming evals/data/candidates.json, the candidate and the path."""

import json
import re
from dataclasses import dataclass

import pytest

from fixtures.predictor import run_weights

CONFIG = {"base_model_name_or_path": "/cache-a/base", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj"],
          "peft_type": "LORA"}


@dataclass(frozen=True)
class Candidate:  # the fields run_weights reads
    name: str
    adapter: str


def folder(path, weights=b"\x01\x02", safetensors=True, pickle=False, config=CONFIG):
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps(config))
    if safetensors:
        (path / "adapter_model.safetensors").write_bytes(weights)
    if pickle:
        (path / "adapter_model.bin").write_bytes(b"\x80\x04pickled")
    return path


def weights_of(path) -> str:
    ((_, identity, _),) = run_weights(Candidate("mine", str(path)), None).values()
    return identity


def refused(adapter: str, why: str):
    """run_weights raises a ValueError naming the registry, the candidate, the path and why."""
    with pytest.raises(ValueError) as info:
        run_weights(Candidate("mine", adapter), None)
    message = str(info.value)
    assert re.search(r"evals/data/candidates\.json(:\d+)?: candidate 'mine': field 'adapter': ", message), message
    assert repr(adapter) in message and re.search(why, message), message


def test_a_folder_holding_only_a_pickled_bin_is_refused(tmp_path):
    refused(str(folder(tmp_path / "a", safetensors=False, pickle=True)), r"pickled files \(adapter_model\.bin\)")


def test_a_pickle_beside_the_safetensors_is_refused(tmp_path):
    refused(str(folder(tmp_path / "a", pickle=True)), r"pickled files \(adapter_model\.bin\)")


@pytest.mark.parametrize("adapter, why", [
    ("{tmp}/missing", "no such folder"),
    ("someone/some-adapter", r"no such folder \(relative paths are from .*; a hub id\?"),
    ("https://huggingface.co/someone/some-adapter", "is a URL"),
    ("{tmp}/a-file", "is not a folder"),
    ("{tmp}/empty", "lacks adapter_config.json and adapter_model.safetensors"),
])
def test_anything_but_a_local_adapter_folder_is_an_error_naming_the_candidate(tmp_path, adapter, why):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "empty").mkdir()
    refused(adapter.format(tmp=tmp_path), why)


def test_the_identity_is_every_file_peft_loads_by_name_and_bytes(tmp_path):
    a = weights_of(folder(tmp_path / "a"))
    assert a.startswith("sha256:") and a == weights_of(folder(tmp_path / "same"))
    assert a != weights_of(folder(tmp_path / "bytes", weights=b"\x01\x03"))
    assert a != weights_of(folder(tmp_path / "config", config={**CONFIG, "base_model_name_or_path": "/elsewhere"}))
    extra = folder(tmp_path / "extra")
    (extra / "other.safetensors").write_bytes(b"\x00")
    assert a != weights_of(extra)
    readme = folder(tmp_path / "readme")
    (readme / "README.md").write_text("not loaded")
    assert a == weights_of(readme)


def test_the_model_host_never_lets_peft_torch_load_a_bin(tiny, tmp_path):
    """Whatever path an adapter folder reaches the host by, one without safetensors is refused before PEFT reads it."""
    from fixtures.base_model import BaseModelRef, Runtime
    from fixtures.model_host import ModelHost

    model, tokenizer = tiny
    host = ModelHost(model, tokenizer, BaseModelRef("tiny", tmp_path, "sha256:tiny"), Runtime("cpu", False))
    bin_only = folder(tmp_path / "bin", safetensors=False, pickle=True)
    for merge in (False, True):
        with pytest.raises(ValueError, match=r"no adapter_model\.safetensors"):
            with host.using(bin_only, merge=merge):
                pass
    assert host.model is model
