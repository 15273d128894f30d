"""The graph decode loop (fixtures/graph_decode.py), run eagerly on the CPU: the tiny model's greedy outputs equal
transformers' generate, with and without a reused prefix, under a logits processor, and at an exact length."""

import pytest

import fixtures.graph_decode as graph_decode
from fixtures.candidates import load_candidates
from fixtures.generate import build_prefix_cache, generate_batch
from fixtures.prompts import fixed_prefix_ids
from fixtures.predictions import prompt_for
from tests.test_prefix_reuse import mixed_requests


@pytest.fixture(scope="module")
def candidates(policy, splits):
    return {c.name: c for c in load_candidates(policy, splits["train"])}


class BanToken:
    """A logits processor that forbids one token and records the lengths it was shown."""

    def __init__(self, token: int):
        self.token, self.lengths = token, []

    def __call__(self, input_ids, scores):
        self.lengths.append(input_ids.shape[1])
        return scores.index_fill(1, scores.new_tensor([self.token], dtype=int), float("-inf"))


def through_the_loop(monkeypatch, *args, calls=None, **kwargs):
    """generate_batch with the graph loop on the CPU (run eagerly); calls: filled with the loop's keyword arguments."""
    calls = [] if calls is None else calls
    real = graph_decode.greedy_decode
    with monkeypatch.context() as m:
        m.setattr(graph_decode, "GRAPH_ON", ("cpu",))
        m.setattr("fixtures.generate.greedy_decode", lambda *a, **k: calls.append(k) or real(*a, **k))
        out = generate_batch(*args, **kwargs)
    assert calls, "generate_batch did not decode through the loop"
    return out


@pytest.mark.parametrize("layout", ["plain", "prefix-reuse", "shared-prefix"])
@pytest.mark.parametrize("name", ["base", "few-shot"])
def test_the_loop_gives_generates_outputs(tiny, splits, candidates, monkeypatch, name, layout):
    """shared-prefix: the loop runs the shared layout (its cache holds the columns after the prefix) and gives what
    generate gives in the plain layout."""
    model, tokenizer = tiny
    render = lambda request: prompt_for(tokenizer, candidates[name], request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render)) if layout != "plain" else None
    prompts = [render(r) for r in mixed_requests(splits)]
    shared = layout == "shared-prefix"
    calls = []
    looped = through_the_loop(monkeypatch, model, tokenizer, prompts, 16, prefix=prefix, shared=shared, calls=calls)
    assert [bool(k.get("held_elsewhere")) for k in calls] == [shared]
    assert looped == generate_batch(model, tokenizer, prompts, 16, prefix=prefix, shared=False)
    assert max(n for _, n in looped) > 1


def test_a_logits_processor_sees_the_whole_sequence_at_every_step(tiny, splits, candidates, monkeypatch):
    from transformers import LogitsProcessorList

    model, tokenizer = tiny
    prompts = [prompt_for(tokenizer, candidates["base"], r) for r in mixed_requests(splits)[:3]]
    free = generate_batch(model, tokenizer, prompts, 8)
    banned = tokenizer(free[0][0], add_special_tokens=False)["input_ids"][0]  # the first token base would write
    loop_ban, generate_ban = BanToken(banned), BanToken(banned)
    looped = through_the_loop(monkeypatch, model, tokenizer, prompts, 8, logits_processor=LogitsProcessorList([loop_ban]))
    assert looped == generate_batch(model, tokenizer, prompts, 8, logits_processor=LogitsProcessorList([generate_ban]))
    assert looped != free and loop_ban.lengths == generate_ban.lengths


def test_no_stop_tokens_decode_exactly_the_budget(tiny, splits, candidates):
    import torch

    model, tokenizer = tiny
    ids = tokenizer([prompt_for(tokenizer, candidates["base"], "a request")], add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        new = graph_decode.greedy_decode(model, ids["input_ids"], ids["attention_mask"], 7, (), 0, graph=False)
    assert new.shape == (1, 7)


def test_a_model_without_a_plain_cache_is_refused():
    from types import SimpleNamespace

    import torch

    assert graph_decode.graph_cache(SimpleNamespace(), 8, torch.zeros(1, dtype=torch.long)) is None


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["base", "few-shot"])
def test_on_cuda_the_captured_loop_gives_the_same_outputs_in_both_layouts(tiny_model_dir, splits, candidates, name):
    """The captured graph replays the shared layout's attention (the memory-efficient kernel over the one prefix copy,
    products over each row's own columns) and gives the plain layout's outputs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval().cuda()
    render = lambda request: prompt_for(tokenizer, candidates[name], request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render))
    prompts = [render(r) for r in mixed_requests(splits)]
    shared = generate_batch(model, tokenizer, prompts, 16, prefix=prefix, shared=True)
    assert shared == generate_batch(model, tokenizer, prompts, 16, prefix=prefix, shared=False)
    assert max(n for _, n in shared) > 1


def test_a_prefix_both_copied_and_held_elsewhere_is_refused(tiny):
    import torch

    model, _ = tiny
    ids = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="two layouts"):
        graph_decode.greedy_decode(model, ids, torch.ones_like(ids), 2, [], 0, prefix_data=([], 2), held_elsewhere=2)
