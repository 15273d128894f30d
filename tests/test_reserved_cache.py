"""The reserved key/value cache (fixtures/generate.py reserved_cache): generate writes into one buffer per layer
instead of concatenating, with exactly the outputs of transformers' own DynamicCache."""

import pytest

import fixtures.generate as generate
from fixtures.candidates import load_candidates
from fixtures.generate import build_prefix_cache, generate_batch, reserved_cache
from fixtures.prompts import fixed_prefix_ids
from fixtures.predictions import prompt_for


@pytest.fixture(scope="module")
def base_candidate(policy, splits):
    return next(c for c in load_candidates(policy, splits["train"]) if c.name == "base")


def requests(splits):
    by_length = sorted(splits["test"], key=lambda c: (len(c.request), c.id))
    return [c.request for c in (by_length[0], by_length[len(by_length) // 2], by_length[-1])] + ["ok"]


def outputs_without_reserve(monkeypatch, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(generate, "reserved_cache", lambda *a, **k: None)
        return generate_batch(*args, **kwargs)


@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "prefix-reuse"])
def test_reserved_cache_gives_the_same_outputs(tiny, splits, base_candidate, monkeypatch, reuse):
    model, tokenizer = tiny
    render = lambda request: prompt_for(tokenizer, base_candidate, request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render)) if reuse else None
    prompts = [render(r) for r in requests(splits)]
    calls = []
    real = generate.reserved_cache
    monkeypatch.setattr(generate, "reserved_cache", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    reserved = generate_batch(model, tokenizer, prompts, 24, prefix=prefix)
    assert calls, "generate_batch did not use the reserved cache"
    assert reserved == outputs_without_reserve(monkeypatch, model, tokenizer, prompts, 24, prefix=prefix)
    assert max(n for _, n in reserved) > 1


def test_a_layer_grows_past_its_capacity_and_after_a_crop(tiny):
    import torch

    model, _ = tiny
    cache = reserved_cache(model, capacity=4)
    layer = cache.layers[0]
    parts = [torch.randn(2, 2, n, 16) for n in (3, 1, 5, 1)]  # the third update overflows the 4 reserved positions
    for part in parts:
        keys, values = layer.update(part, -part)
    whole = torch.cat(parts, dim=-2)
    assert torch.equal(keys, whole) and torch.equal(values, -whole) and cache.get_seq_length() == 10
    layer.crop(-2)
    keys, _ = layer.update(parts[0], -parts[0])
    assert torch.equal(keys, torch.cat([whole[..., :8, :], parts[0]], dim=-2))
    layer.batch_select_indices(torch.tensor([1]))
    keys, _ = layer.update(parts[3][1:], -parts[3][1:])
    assert torch.equal(keys[0], torch.cat([whole[1, :, :8], parts[0][1], parts[3][1]], dim=-2))
