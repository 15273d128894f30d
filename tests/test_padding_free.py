"""Padding-free training batches: one row of concatenated examples whose attention stays within each example."""

import pytest

from training.recipe import TokenCounter, build_dataset


@pytest.fixture(scope="module")
def rows(tiny, adapter_system, splits):
    _, tokenizer = tiny
    cases = sorted(splits["train"], key=lambda c: (len(c.request), c.id))
    picked = [cases[0], cases[len(cases) // 3], cases[2 * len(cases) // 3], cases[-1]]  # lengths far apart
    return list(build_dataset(tokenizer, adapter_system, picked))


def batch_loss(model, batch):
    import torch

    with torch.no_grad():
        return model(**batch, use_cache=False).loss.item()  # as TRL's compute_loss calls it: with a cache, no packing


def test_padding_free_loss_equals_the_per_example_losses(tiny, rows):
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model, tokenizer = tiny
    assert len({len(r["input_ids"]) for r in rows}) == len(rows)
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(rows)

    # Token-weighted mean of each example's loss computed on its own: what one batch's loss means.
    total, count = 0.0, 0
    for r in rows:
        n = sum(1 for t in r["labels"][1:] if t != -100)
        total += n * batch_loss(model, {"input_ids": torch.tensor([r["input_ids"]]), "labels": torch.tensor([r["labels"]])})
        count += n
    separate = total / count
    assert batch_loss(model, packed) == pytest.approx(separate, rel=1e-5)
    assert batch_loss(model, padded) == pytest.approx(separate, rel=1e-5)


def test_attention_does_not_cross_examples(tiny, rows):
    """Changing the first example's tokens leaves the second example's logits untouched in a packed row."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model, tokenizer = tiny
    collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    changed = [{**rows[0], "input_ids": list(reversed(rows[0]["input_ids"]))}, rows[1]]
    start = len(rows[0]["input_ids"])
    # use_cache=False as SFTTrainer.compute_loss passes it: transformers builds the per-example mask from position_ids
    # only when there is no cache (masking_utils.find_packed_sequence_indices).
    with torch.no_grad():
        a = model(**collate(rows[:2]), use_cache=False).logits[0, start:]
        b = model(**collate(changed), use_cache=False).logits[0, start:]
    assert torch.allclose(a, b, atol=1e-5)


def test_bucketed_padding_is_the_same_loss(tiny, rows):
    """The graphs plan pads every packed row to one length (training/memory_plan.py): the padding is unlabelled and,
    starting at position 0, a sequence of its own, so the loss and the examples' logits stay."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from training.config import TrainConfig
    from training.memory_plan import GRAPH_ROUND, trainer_kwargs

    model, tokenizer = tiny
    lengths = [len(r["input_ids"]) for r in rows]
    multiple = trainer_kwargs("graphs", TrainConfig(), lengths)["pad_to_multiple_of"]
    assert multiple % GRAPH_ROUND == 0 and multiple >= sum(lengths)
    assert "pad_to_multiple_of" not in trainer_kwargs("fast", TrainConfig(), lengths)
    free = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    bucketed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True,
                                               pad_to_multiple_of=multiple)(rows)
    n = free["input_ids"].shape[1]
    assert bucketed["input_ids"].shape[1] == multiple > n
    assert batch_loss(model, bucketed) == pytest.approx(batch_loss(model, free), rel=1e-5)
    with torch.no_grad():
        a = model(**free, use_cache=False).logits[0]
        b = model(**bucketed, use_cache=False).logits[0, :n]
    assert torch.allclose(a, b, atol=1e-5)


def test_token_counter_counts_padding(tiny, rows):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model, tokenizer = tiny
    model.train()
    try:
        padded = TokenCounter(DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id), model)
        free = TokenCounter(DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True), model)
        padded(rows), free(rows)
    finally:
        model.eval()
    real = sum(len(r["input_ids"]) for r in rows)
    assert padded.real_tokens == free.real_tokens == free.batch_tokens == real
    assert padded.batch_tokens == len(rows) * max(len(r["input_ids"]) for r in rows) > real
