"""Training batches that hold the prompt's fixed start once compute what padding-free batches compute."""

import pytest

from tests.tiny_model import loss_and_grad, trainable_tiny
from training.recipe import build_dataset
from training.shared_prompt import ATTENTION, MASK_KEY, SharedPromptCollator, register


@pytest.fixture(scope="module")
def rows(tiny, adapter_system, splits):
    _, tokenizer = tiny
    cases = sorted(splits["train"], key=lambda c: (len(c.request), c.id))
    return list(build_dataset(tokenizer, adapter_system, [cases[0], cases[len(cases) // 2], cases[-1]]))


@pytest.fixture(scope="module")
def shared(tiny, adapter_system):
    from fixtures.prompts import fixed_prefix_ids, messages, render_prompt

    _, tokenizer = tiny
    return fixed_prefix_ids(tokenizer, lambda r: render_prompt(tokenizer, messages(adapter_system, r)))


def test_the_row_holds_the_shared_start_once(rows, shared):
    batch = SharedPromptCollator(shared)(rows)
    n, total = len(shared), sum(len(r["input_ids"]) for r in rows)
    assert n > 10 and batch["input_ids"].shape == (1, total - (len(rows) - 1) * n)
    assert batch["input_ids"][0, :n].tolist() == shared
    # each example's own tokens continue from the shared start, as in the example alone
    first_own = batch["position_ids"][0, n : n + len(rows[0]["input_ids"]) - n].tolist()
    assert first_own == list(range(n, len(rows[0]["input_ids"])))
    assert (batch["labels"] != -100).sum() == sum(sum(1 for y in r["labels"] if y != -100) for r in rows)
    mask = batch[MASK_KEY][0, 0]
    second = n + len(rows[0]["input_ids"]) - n  # first token of the second example
    assert mask[second, :n].all() and not mask[second, n:second].any() and mask[second, second]


def test_an_example_without_the_shared_start_is_packed_on_its_own(rows, shared):
    odd = {"input_ids": [7] + rows[0]["input_ids"], "labels": [-100] + rows[0]["labels"]}
    batch = SharedPromptCollator(shared)([rows[1], odd])
    n = len(shared)
    start = n + len(rows[1]["input_ids"]) - n
    assert batch["position_ids"][0, start] == 0 and not batch[MASK_KEY][0, 0, start:, :n].any()
    alone = SharedPromptCollator(shared)([odd])
    assert alone["input_ids"].shape[1] == len(odd["input_ids"])  # nobody shares: no shared start in the row


def test_same_loss_and_gradient_as_padding_free(tiny_model_dir, tiny, rows, shared):
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    _, tokenizer = tiny
    model = trainable_tiny(tiny_model_dir)

    packed_loss, packed_grad = loss_and_grad(
        model, DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows))
    before = model.config._attn_implementation
    model.config._attn_implementation = register()
    try:
        shared_loss, shared_grad = loss_and_grad(model, SharedPromptCollator(shared)(rows))
    finally:
        model.config._attn_implementation = before
    assert register() == ATTENTION
    assert shared_loss == pytest.approx(packed_loss, rel=1e-5)
    assert torch.allclose(shared_grad, packed_grad, rtol=1e-4, atol=1e-6)
