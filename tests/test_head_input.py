"""The output embedding gets a contiguous input in generate_batch (fixtures/generate.py contiguous_head_input): the
prompt step's last-position slice would otherwise make torch.matmul broadcast the head once per row. Same outputs."""

from contextlib import nullcontext

import pytest

import fixtures.generate as generate
from fixtures.candidates import load_candidates
from fixtures.generate import build_prefix_cache, generate_batch
from fixtures.prompts import fixed_prefix_ids
from fixtures.predictions import prompt_for


@pytest.fixture(scope="module")
def prompts(tiny, policy, splits):
    _, tokenizer = tiny
    base = next(c for c in load_candidates(policy, splits["train"]) if c.name == "base")
    render = lambda request: prompt_for(tokenizer, base, request)  # noqa: E731
    by_length = sorted(splits["test"], key=lambda c: (len(c.request), c.id))
    return render, [render(c.request) for c in (by_length[0], by_length[len(by_length) // 2], by_length[-1])]


def head_inputs_seen(model, run):
    """Run `run()` and return (contiguous?, shape) of every input the output embedding received."""
    seen = []
    handle = model.get_output_embeddings().register_forward_hook(
        lambda module, args, output: seen.append((args[0].is_contiguous(), tuple(args[0].shape))))
    try:
        result = run()
    finally:
        handle.remove()
    return seen, result


@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "prefix-reuse"])
def test_the_head_sees_contiguous_inputs_and_outputs_do_not_change(tiny, prompts, monkeypatch, reuse):
    model, tokenizer = tiny
    render, texts = prompts
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render)) if reuse else None
    seen, fixed = head_inputs_seen(model, lambda: generate_batch(model, tokenizer, texts, 12, prefix=prefix))
    assert seen and all(contiguous for contiguous, _ in seen)
    monkeypatch.setattr(generate, "contiguous_head_input", lambda model: nullcontext())
    seen_before, before = head_inputs_seen(model, lambda: generate_batch(model, tokenizer, texts, 12, prefix=prefix))
    assert not seen_before[0][0], "the prompt step's slice was contiguous anyway: this test no longer shows the fix"
    assert fixed == before
    assert max(n for _, n in fixed) > 1


def test_the_hook_is_removed_afterwards(tiny, prompts):
    model, tokenizer = tiny
    _, texts = prompts
    generate_batch(model, tokenizer, texts[:2], 2)
    assert not model.get_output_embeddings()._forward_pre_hooks


def test_the_prefix_step_projects_only_its_last_position(tiny, prompts):
    model, tokenizer = tiny
    render, _ = prompts
    ids = fixed_prefix_ids(tokenizer, render)
    seen, cache = head_inputs_seen(model, lambda: build_prefix_cache(model, ids))
    assert cache is not None and [shape for _, shape in seen] == [(1, 1, seen[0][1][-1])]
