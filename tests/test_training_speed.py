"""What makes a CPU training step cheaper must not change what it computes."""

import pytest

from tests.tiny_model import loss_and_grad, trainable_tiny
from training.recipe import build_dataset, head_scores_labelled_positions


def test_labelled_positions_only_is_the_same_loss_and_gradient(tiny_model_dir, tiny, adapter_system, splits):
    import torch
    import trl.trainer.utils as trl_utils
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    _, tokenizer = tiny
    rows = list(build_dataset(tokenizer, adapter_system, splits["train"][:4]))
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    assert (batch["labels"] == -100).any()
    model = trainable_tiny(tiny_model_dir)

    original = trl_utils._use_triton
    every_loss, every_grad = loss_and_grad(model, batch)
    calls = []
    with head_scores_labelled_positions("cpu", log=calls.append):
        assert trl_utils._use_triton is not original and trl_utils._use_triton(torch.device("cpu"))
        labelled_loss, labelled_grad = loss_and_grad(model, batch)
    assert trl_utils._use_triton is original and calls == []
    assert labelled_loss == pytest.approx(every_loss, rel=1e-5)
    assert torch.allclose(labelled_grad, every_grad, rtol=1e-4, atol=1e-7)


def test_it_leaves_other_devices_alone():
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    with head_scores_labelled_positions("cuda"):
        assert trl_utils._use_triton is original
