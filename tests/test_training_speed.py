"""What makes a CPU training step cheaper must not change what it computes."""

import pytest

from training.benchmark import SFT_HEAD_OUTPUTS
from training.recipe import build_dataset, head_scores_labelled_positions


def test_labelled_positions_only_is_the_same_loss_and_gradient(tiny_model_dir, tiny, adapter_system, splits):
    import torch
    import trl.trainer.utils as trl_utils
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from training.config import TrainConfig, lora_config

    _, tokenizer = tiny
    rows = list(build_dataset(tokenizer, adapter_system, splits["train"][:4]))
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    assert (batch["labels"] == -100).any()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trl_utils.add_fused_lm_head(model, outputs=SFT_HEAD_OUTPUTS)
    torch.manual_seed(0)
    model = get_peft_model(model, lora_config(TrainConfig()))
    for p in model.parameters():  # LoRA B starts at zero; give the adapter a gradient path that shows up in the loss
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)

    def loss_and_grad():
        model.zero_grad()
        out = model(**batch, use_cache=False, fused_lm_head=True)
        loss = -out.log_probs.sum() / out.label_mask.sum()
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])

    original = trl_utils._use_triton
    every_loss, every_grad = loss_and_grad()
    calls = []
    with head_scores_labelled_positions("cpu", log=calls.append):
        assert trl_utils._use_triton is not original and trl_utils._use_triton(torch.device("cpu"))
        labelled_loss, labelled_grad = loss_and_grad()
    assert trl_utils._use_triton is original and calls == []
    assert labelled_loss == pytest.approx(every_loss, rel=1e-5)
    assert torch.allclose(labelled_grad, every_grad, rtol=1e-4, atol=1e-7)


def test_it_leaves_other_devices_alone():
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    with head_scores_labelled_positions("cuda"):
        assert trl_utils._use_triton is original
