"""The real default model: converts from the shipped GGUF, renders its chat template, answers after the '{' prefill."""

import pytest

from fixtures.base_model import DEFAULT_NAME, MANIFEST, Runtime, load_base, resolve_base_model
from fixtures.generate import generate_batch
from fixtures.prompts import end_of_turn, messages, render_prompt


@pytest.mark.slow
def test_default_model_renders_and_answers(policy, tmp_path_factory):
    from platformdirs import user_cache_path

    ref = resolve_base_model(DEFAULT_NAME, user_cache_path("router-evals"))
    # Identified by the converted bytes (its manifest), not by the GGUF it came from.
    assert ref.identity.startswith("sha256:") and (ref.path / "model.safetensors").is_file() and (ref.path / MANIFEST).is_file()
    model, tokenizer = load_base(ref, Runtime("cpu", False))
    prompt = render_prompt(tokenizer, messages(policy.short_system_prompt, "Marketing wants a Glean agent that drafts posts."))
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n{")
    assert end_of_turn(tokenizer) == "<|im_end|>"
    (text, n), = generate_batch(model, tokenizer, [prompt], max_new_tokens=24)
    assert text.strip() and 0 < n <= 24


def test_a_missing_model_says_how_to_point_at_a_folder(tmp_path, monkeypatch):
    from fixtures.base_model import BaseModelError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BaseModelError, match="Point --base-model .* at a local folder"):
        resolve_base_model("no-such-org/no-such-model", tmp_path)


def test_a_local_folder_is_identified_by_its_bytes(tiny_model_dir, tmp_path):
    import shutil

    first = resolve_base_model(str(tiny_model_dir), tmp_path)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    assert resolve_base_model(str(copy), tmp_path).identity == first.identity
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("64", "64 "))
    assert resolve_base_model(str(copy), tmp_path).identity != first.identity
