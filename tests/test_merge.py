"""A candidate with "merge": true runs its adapter merged into a copy of the base: same answers as the unmerged
adapter up to rounding, its own prediction key, and on a 4-bit runtime the merge is into the dequantized NF4
weights the adapter was trained against, not into the unquantized ones."""

import json

import pytest
import torch

from fixtures.base_model import BaseModelRef, Runtime, load_base
from fixtures.candidates import load_candidates
from fixtures.generate import GenerationSettings
from fixtures.model_host import ModelHost, merge_adapter
from fixtures.predictions import candidate_key, prompt_for
from fixtures.prompts import encode_prompt
from training.config import TrainConfig, lora_config


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter on the tiny model with random A and B, so that merging it changes the weights."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_config(TrainConfig()))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.05)
    out = tmp_path_factory.mktemp("tiny-adapter")
    model.save_pretrained(out)
    return out


def registry(tmp_path, entries):
    path = tmp_path / "candidates.json"
    path.write_text("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n")
    return path


TUNED = {"name": "fine-tuned", "prompt": "short", "adapter": "trained"}


def test_merge_has_its_own_key_and_leaves_the_unmerged_key_alone(policy, splits, tmp_path):
    plain, merged = load_candidates(policy, splits["train"], registry(tmp_path, [TUNED, {**TUNED, "name": "m", "merge": True}]))
    assert (plain.merge, merged.merge) == (False, True)
    key = lambda c: candidate_key(c, "sha256:b", "cpu-fp32", "sha256:a", None, GenerationSettings(92, 8))  # noqa: E731
    assert key(plain) != key(merged)
    assert key(plain) == candidate_key(plain, "sha256:b", "cpu-fp32", "sha256:a", None, GenerationSettings(92, 8))


def test_merge_without_an_adapter_is_an_error_naming_the_line(policy, splits, tmp_path):
    path = registry(tmp_path, [TUNED, {"name": "m", "prompt": "short", "merge": True},
                               {"name": "n", "prompt": "short", "adapter": "none", "merge": True}])
    with pytest.raises(ValueError) as error:
        load_candidates(policy, splits["train"], path)
    assert "candidates.json:3: field '[1].adapter': missing (required)" in str(error.value)
    assert "candidates.json:4: field '[2].adapter': 'none' is not allowed: merge needs an adapter" in str(error.value)


def logits(model, tokenizer, text):
    ids = torch.tensor([encode_prompt(tokenizer, text)])
    with torch.inference_mode():
        return model(input_ids=ids).logits.float()


def test_fp32_merged_answers_as_the_unmerged_adapter(tiny_model_dir, tiny_adapter, policy, splits, candidates):
    ref, runtime = BaseModelRef("tiny", tiny_model_dir, "sha256:tiny"), Runtime("cpu", False)
    model, tokenizer = load_base(ref, runtime)
    host = ModelHost(model, tokenizer, ref, runtime)
    tuned = candidates["fine-tuned"]
    texts = [prompt_for(tokenizer, tuned, c.request) for c in splits["test"][:4]]
    with host.using(tiny_adapter, merge=True) as m:
        merged = [logits(m, tokenizer, t) for t in texts]
        assert not any("lora" in n for n, _ in m.named_modules())
    with host.using(tiny_adapter) as m:
        unmerged = [logits(m, tokenizer, t) for t in texts]
    with host.using(None) as m:
        bare = logits(m, tokenizer, texts[0])
    assert (merged[0] - bare).abs().max() > 1e-2  # the adapter does change the answer
    for a, b in zip(merged, unmerged):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        assert torch.equal(a[0, -1].argmax(), b[0, -1].argmax())
    with host.using(tiny_adapter, merge=True) as again:
        assert again is host.merged[str(tiny_adapter.resolve())]  # built once per adapter


def test_4bit_merge_is_into_the_dequantized_weights(tiny_model_dir, tiny_adapter, splits, candidates):
    pytest.importorskip("bitsandbytes")
    ref, runtime = BaseModelRef("tiny", tiny_model_dir, "sha256:tiny"), Runtime("cpu", True)
    model, tokenizer = load_base(ref, runtime)
    host = ModelHost(model, tokenizer, ref, runtime)
    text = prompt_for(tokenizer, candidates["fine-tuned"], splits["test"][0].request)
    with host.using(tiny_adapter) as m:
        unmerged = logits(m, tokenizer, text)
    with host.using(tiny_adapter, merge=True) as m:
        assert not any("4bit" in type(mod).__name__ for mod in m.modules())
        merged = logits(m, tokenizer, text)
    into_unquantized = merge_adapter(ref, Runtime("cpu", False), tiny_adapter)
    near = (merged - unmerged).abs().max().item()
    far = (logits(into_unquantized, tokenizer, text) - unmerged).abs().max().item()
    assert near < far / 3, (near, far)
