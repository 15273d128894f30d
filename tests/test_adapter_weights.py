"""An adapter's weight identity (fixtures/adapter_weights.py): its weight bytes and the config that shapes its
outputs; not the folder the base was loaded from, nor the order PEFT happened to write its target modules in."""

import json

from fixtures.adapter_weights import adapter_weights

CONFIG = {"base_model_name_or_path": "/cache-a/base", "r": 16, "lora_alpha": 32,
          "target_modules": ["q_proj", "v_proj", "k_proj"], "peft_type": "LORA"}


def write(folder, weights=b"\x01\x02", **config):
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(weights)
    (folder / "adapter_config.json").write_text(json.dumps({**CONFIG, **config}))
    (folder / "README.md").write_text(str(folder))  # not weights
    return folder


def test_the_same_bytes_written_elsewhere_are_the_same_weights(tmp_path):
    a = write(tmp_path / "a")
    b = write(tmp_path / "b", base_model_name_or_path="/cache-b/base", target_modules=["k_proj", "q_proj", "v_proj"])
    assert adapter_weights(a) == adapter_weights(b)


def test_other_weights_or_another_config_are_other_weights(tmp_path):
    a = write(tmp_path / "a")
    assert adapter_weights(a) != adapter_weights(write(tmp_path / "bytes", weights=b"\x01\x03"))
    assert adapter_weights(a) != adapter_weights(write(tmp_path / "rank", r=8))
    assert adapter_weights(a) != adapter_weights(write(tmp_path / "modules", target_modules=["q_proj", "v_proj"]))


def test_verified_digests_stand_in_for_reading_the_weights(tmp_path):
    from fixtures.base_model import sha256_file

    a = write(tmp_path / "a")
    weights = a / "adapter_model.safetensors"
    assert adapter_weights(a, {weights.name: sha256_file(weights)}) == adapter_weights(a)
    assert adapter_weights(a, {weights.name: "0" * 64}) != adapter_weights(a)  # the digest given is the one used


def test_a_broken_config_is_named_with_its_line(tmp_path):
    import pytest

    a = write(tmp_path / "a")
    (a / "adapter_config.json").write_text('{\n  "r": 16,\n  "lora_alpha": \n}')
    with pytest.raises(ValueError, match=r"adapter_config.json: not a JSON adapter config \(line 4, column 1"):
        adapter_weights(a)
    (a / "adapter_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="adapter_config.json: expected a JSON object, got list"):
        adapter_weights(a)
