"""fixtures/fused_lora.py: an unmerged adapter's update in two products gives PEFT's outputs (fp32 tiny model), only
inside the context, and leaves disabled adapters alone."""

import pytest
import torch

from fixtures.fused_lora import fused_lora
from tests.test_merge import tiny_adapter  # noqa: F401  (fixture)


@pytest.fixture
def peft_model(tiny_model_dir, tiny_adapter):  # noqa: F811
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tiny_adapter).eval()


def logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids).logits


def test_fused_update_gives_peft_s_logits(peft_model):
    ids = torch.tensor([[5, 9, 13, 2, 7, 11], [3, 3, 8, 1, 4, 6]])
    plain = logits(peft_model, ids)
    with fused_lora(peft_model) as fused:
        assert fused == 7 * peft_model.config.num_hidden_layers
        inside = logits(peft_model, ids)
        with peft_model.disable_adapter():
            off = logits(peft_model, ids)
    torch.testing.assert_close(inside, plain, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(off, plain, atol=1e-3), "the adapter changes the logits: the test would see a no-op"
    assert all("forward" not in m.__dict__ for m in peft_model.modules()), "the context leaves no patched forward"
    torch.testing.assert_close(logits(peft_model, ids), plain)


def test_a_model_without_adapters_is_left_alone(tiny):
    model, _ = tiny
    with fused_lora(model) as fused:
        assert fused == 0
