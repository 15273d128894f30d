"""What makes a CPU training step cheaper must not change what it computes."""

import pytest

from tests.tiny_model import loss_and_grad, trainable_tiny
from training.recipe import adapter_inputs_left_to_autocast, build_dataset, head_scores_labelled_positions


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


def test_adapter_inputs_left_to_autocast_are_the_same_loss_and_gradient_bit_for_bit(tiny_model_dir, tiny, adapter_system,
                                                                                     splits):
    """A bf16 base with fp32 LoRA weights under bf16 autocast (the cpu-bf16 training): leaving the adapter input's
    cast to autocast computes exactly what PEFT's cast to fp32 and back computed."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    _, tokenizer = tiny
    rows = list(build_dataset(tokenizer, adapter_system, splits["train"][:4]))
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    model = trainable_tiny(tiny_model_dir, dtype=torch.bfloat16)
    lora = [m for m in model.modules() if hasattr(m, "lora_A")]
    assert lora and {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.float32}
    with adapter_inputs_left_to_autocast(model, autocast=True), pytest.raises(RuntimeError, match="dtype"):
        loss_and_grad(model, batch)  # outside autocast nothing else makes bf16 inputs meet fp32 weights: the cast is real
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast_loss, cast_grad = loss_and_grad(model, batch)
        with adapter_inputs_left_to_autocast(model, autocast=True):
            assert not any(getattr(m, "cast_input_dtype_enabled", True) for m in lora)
            left_loss, left_grad = loss_and_grad(model, batch)
    assert all(getattr(m, "cast_input_dtype_enabled", True) for m in lora)  # restored
    assert left_loss == cast_loss and torch.equal(left_grad, cast_grad)


def test_without_autocast_the_adapter_input_cast_stays(tiny_model_dir):
    model = trainable_tiny(tiny_model_dir)
    with adapter_inputs_left_to_autocast(model, autocast=False):
        assert all(getattr(m, "cast_input_dtype_enabled", True) for m in model.modules())
