"""Training batches that hold the prompt's fixed start once (the CPU's training path).

Every training example starts with the same tokens: the chat template's system turn with the trained candidate's
system prompt (37 of the default model's 135 tokens an example on average). A padding-free batch of 8 computes
them 8 times. Here a batch is one row: that shared start once, then each example's own tokens, their positions
continuing from the shared start as in the example alone. An own token attends to the shared start and to its own
example's earlier tokens, never to another example's; the shared start attends causally to itself. So every token
sees the context and positions it has in its example alone and the loss is the same (tests/test_shared_prompt.py);
the shared start's activations get the gradient of every example at once, the sum the copies would get.

An example that does not start with the shared tokens (cut, or rendered by another template) is packed on its own,
from position 0. The mask travels as the model call's `MASK_KEY` argument to the attention function registered
under `ATTENTION` (scaled dot-product attention with that mask); transformers builds no mask of its own for it.
On CUDA the graphs plan needs one batch shape and keeps TRL's padding-free batches (training/memory_plan.py)."""

from __future__ import annotations

import functools

ATTENTION = "router_shared_prompt"
MASK_KEY = "shared_prompt_mask"
SHARED_ON = ("cpu",)


def attention_forward(module, query, key, value, attention_mask, **kwargs):
    """transformers attention interface: scaled dot-product attention under the batch's MASK_KEY mask (boolean
    [1, 1, T, T]); without one, causal over the whole row."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    mask = kwargs.pop(MASK_KEY, None)
    return sdpa_attention_forward(module, query, key, value, mask if mask is not None else attention_mask, **kwargs)


@functools.cache
def register() -> str:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, attention_forward)
    return ATTENTION


class SharedPromptCollator:
    """Examples ({'input_ids', 'labels'}, labels -100 on the prompt) -> one row: input_ids, labels, position_ids
    [1, T] and MASK_KEY [1, 1, T, T]. shared: the token ids every example starts with (the fixed prompt start)."""

    def __init__(self, shared: list[int]):
        self.shared = list(shared)

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        n = len(self.shared)
        own = [(e["input_ids"], e["labels"]) for e in examples]
        sharing = [n > 0 and list(ids[:n]) == self.shared and all(y == -100 for y in labels[:n]) for ids, labels in own]
        ids, labels, positions, segment, sees_shared = [], [], [], [], []
        if any(sharing):
            ids += self.shared
            labels += [-100] * n
            positions += range(n)
            segment += [0] * n
            sees_shared += [True] * n
        for i, ((x, y), shares) in enumerate(zip(own, sharing), start=1):
            start = n if shares else 0
            x, y = list(x[start:]), list(y[start:])
            if y:
                y[0] = -100  # never predicted from the token before it, which belongs to another stretch
            ids += x
            labels += y
            positions += range(start, start + len(x))
            segment += [i] * len(x)
            sees_shared += [shares] * len(x)
        seg = torch.tensor(segment)
        same = seg[:, None] == seg[None, :]
        shared_key = (seg[None, :] == 0) & torch.tensor(sees_shared)[:, None]
        mask = (same | shared_key).tril()  # a key at or before the query, in its stretch or the shared start
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                "position_ids": torch.tensor([positions]), MASK_KEY: mask[None, None]}
