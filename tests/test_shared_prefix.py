"""Shared-prefix attention (fixtures/shared_prefix.py): the prefix attended once for the batch gives the attention,
and the greedy outputs, of the plain layout where every row holds its own copy."""

from types import SimpleNamespace

import pytest

import fixtures.shared_prefix as shared_prefix
from fixtures.candidates import load_candidates
from fixtures.generate import GenerationSettings, build_prefix_cache, generate_batch
from fixtures.prompts import fixed_prefix_ids
from fixtures.predictions import candidate_key, prompt_for
from tests.test_prefix_reuse import mixed_requests


def reference_attention(query, keys, values, mask):
    """Plain attention over the whole keys, as transformers' sdpa path runs it."""
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv

    group = query.shape[1] // keys.shape[1]
    out = torch.nn.functional.scaled_dot_product_attention(query, repeat_kv(keys, group), repeat_kv(values, group),
                                                           attn_mask=mask)
    return out.transpose(1, 2)


@pytest.mark.parametrize("kernels", ["cpu", "products"] + [pytest.param(k, marks=pytest.mark.skipif(
    "not __import__('torch').cuda.is_available()", reason="needs a CUDA device")) for k in ("cuda", "cuda-bf16")])
@pytest.mark.parametrize("q_len", [1, 5], ids=["decode", "prompt"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "no-mask"])
def test_attention_equals_attention_over_the_whole_keys(q_len, padded, kernels, monkeypatch):
    """kernels: the CPU flash kernel; plain fp32 products (where a device has no kernel that returns the log-sum-exp,
    and CUDA's own columns); CUDA in fp32 (the memory-efficient kernel for the prefix, products for the rest) and in
    bf16 (the flash kernel for the prefix where the GPU runs it), against the reference in fp32."""
    import torch

    if kernels == "products":
        monkeypatch.setattr(shared_prefix, "_attend", shared_prefix._attend_products)
    torch.manual_seed(0)
    batch, heads, kv_heads, dim, shared, own = 3, 6, 2, 16, 11, 7
    query = torch.randn(batch, heads, q_len, dim)
    prefix = [(torch.randn(1, kv_heads, shared, dim), torch.randn(1, kv_heads, shared, dim))]
    keys, values = torch.randn(batch, kv_heads, own, dim), torch.randn(batch, kv_heads, own, dim)
    causal = torch.ones(q_len, own, dtype=torch.bool).tril(own - q_len)
    allowed = causal.expand(batch, 1, q_len, own).clone()
    if padded:  # row 1 has 2 pad columns, row 2 has own - 1: its first query sees none of its own columns
        allowed[1, :, :, :2] = False
        allowed[2, :, :, : own - 1] = False
    whole = torch.cat([torch.ones(batch, 1, q_len, shared, dtype=torch.bool), allowed], dim=-1)
    reference = query, keys, values, prefix
    if kernels.startswith("cuda"):
        dtype = torch.bfloat16 if kernels == "cuda-bf16" else torch.float32
        query, keys, values = (t.cuda().to(dtype) for t in (query, keys, values))
        prefix, whole = [tuple(t.cuda().to(dtype) for t in prefix[0])], whole.cuda()
        reference = tuple(t.float() for t in (query, keys, values)) + ([tuple(t.float() for t in prefix[0])],)
    model = SimpleNamespace(config=SimpleNamespace(_attn_implementation="sdpa"))
    with shared_prefix.shared_prefix_attention(model, prefix) as calls:
        got, _ = shared_prefix.attention_forward(SimpleNamespace(layer_idx=0), query, keys, values,
                                                 whole if padded else None, scaling=dim ** -0.5)
        assert model.config._attn_implementation == shared_prefix.ATTENTION
    assert calls == [0] and model.config._attn_implementation == "sdpa"
    r_query, r_keys, r_values, r_prefix = reference
    expected = reference_attention(r_query, torch.cat([r_prefix[0][0].expand(batch, -1, -1, -1), r_keys], dim=2),
                                   torch.cat([r_prefix[0][1].expand(batch, -1, -1, -1), r_values], dim=2), whole)
    assert got.shape == (batch, q_len, heads, dim)
    tolerance = 2e-2 if kernels == "cuda-bf16" else 1e-5  # bf16 output: 8 bits of mantissa
    torch.testing.assert_close(got.float(), expected, atol=tolerance, rtol=tolerance)


@pytest.fixture(scope="module")
def candidates(policy, splits):
    return {c.name: c for c in load_candidates(policy, splits["train"])}


@pytest.mark.parametrize("name", ["base", "few-shot", "fine-tuned"])
def test_shared_layout_gives_the_plain_outputs(tiny, splits, candidates, name, monkeypatch):
    model, tokenizer = tiny
    render = lambda request: prompt_for(tokenizer, candidates[name], request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render))
    prompts = [render(r) for r in mixed_requests(splits)]
    calls = []
    real = shared_prefix.attention_forward
    monkeypatch.setattr(shared_prefix, "attention_forward", lambda module, *a, **k: calls.append(module.layer_idx) or real(module, *a, **k))
    shared_prefix.register.cache_clear()
    try:
        shared = generate_batch(model, tokenizer, prompts, 16, prefix=prefix, shared=True)
    finally:
        monkeypatch.undo()
        shared_prefix.register.cache_clear()
    assert calls, "generate_batch did not attend through the shared prefix"
    assert shared == generate_batch(model, tokenizer, prompts, 16)
    assert max(n for _, n in shared) > 1


def test_a_model_that_bypasses_the_attention_interface_gets_the_plain_layout(tiny, splits, candidates, monkeypatch):
    model, tokenizer = tiny
    render = lambda request: prompt_for(tokenizer, candidates["few-shot"], request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render))
    prompts = [render(r) for r in mixed_requests(splits)[:3]]
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import sdpa_mask

    def own_columns_only(module, query, key, value, mask, **kwargs):  # a model whose attention ignores the prefix
        return sdpa_attention_forward(module, query, key, value, None if mask is None else mask[..., -key.shape[2]:], **kwargs)

    AttentionInterface.register("router_test_bypass", own_columns_only)
    AttentionMaskInterface.register("router_test_bypass", sdpa_mask)
    monkeypatch.setattr(shared_prefix, "register", lambda: "router_test_bypass")
    assert generate_batch(model, tokenizer, prompts, 8, prefix=prefix, shared=True) == generate_batch(model, tokenizer, prompts, 8)


def test_the_shared_layout_and_the_graph_loop_are_part_of_a_prediction_identity(candidates):
    plain, shared = GenerationSettings(92, 32), GenerationSettings(92, 32, shared_prefix=True)
    assert plain.to_dict() == {"max_new_tokens": 92, "batch_size": 32, "greedy": True}  # the key it had before
    assert shared.to_dict()["shared_prefix"] is True
    key = lambda g: candidate_key(candidates["base"], "sha256:b", "cpu-bf16", None, "t", g)  # noqa: E731
    assert key(plain) != key(shared)
    assert key(GenerationSettings(92, 32, graph_decode=True)) not in (key(plain), key(shared))
    flash = GenerationSettings(92, 32, shared_prefix=True, prefix_kernel="flash")
    assert flash.to_dict()["prefix_kernel"] == "flash" and key(flash) != key(shared)


def test_the_cpu_prefix_kernel_keeps_its_identity_and_cuda_names_its_own():
    assert shared_prefix.prefix_kernel("cpu", True) == shared_prefix.prefix_kernel("cpu", False) == ""
    assert shared_prefix.prefix_kernel("cuda", False) == "efficient"


def test_short_prefixes_and_other_devices_keep_the_plain_layout():
    assert not shared_prefix.shares_prefix("cpu", shared_prefix.MIN_SHARED - 1)
    assert shared_prefix.shares_prefix("cpu", shared_prefix.MIN_SHARED)
    assert shared_prefix.shares_prefix("cuda", shared_prefix.MIN_SHARED)
    assert not shared_prefix.shares_prefix("mps", 10 * shared_prefix.MIN_SHARED)
