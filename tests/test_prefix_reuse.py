"""Prefix reuse: the candidate's fixed prompt start computed once gives the same greedy outputs as the plain path."""

import pytest

from fixtures.candidates import load_candidates
from fixtures.generate import GenerationSettings, _batch_cache, _shared_cut, build_prefix_cache, generate_batch
from fixtures.predictions import PredictionStore, predict, prompt_for
from fixtures.prompts import encode_prompt, fixed_prefix_ids


@pytest.fixture(scope="module")
def candidates(policy, splits):
    return {c.name: c for c in load_candidates(policy, splits["train"])}


def mixed_requests(splits):
    """Requests of very different lengths in one batch, and two whose first characters can merge with the template."""
    by_length = sorted(splits["test"], key=lambda c: (len(c.request), c.id))
    picked = [c.request for c in (by_length[0], by_length[len(by_length) // 2], by_length[-1])]
    return picked + ["ok", " leading space and a question?", "\n\nStarts with blank lines: build a Glean bot."]


@pytest.mark.parametrize("shared", [False, True], ids=["copied-per-row", "shared"])
@pytest.mark.parametrize("name", ["base", "fine-tuned"])
def test_reused_prefix_gives_the_same_outputs(tiny, splits, candidates, name, shared):
    model, tokenizer = tiny
    candidate = candidates[name]
    render = lambda request: prompt_for(tokenizer, candidate, request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render))
    assert prefix is not None and len(prefix.ids) > 20
    prompts = [render(r) for r in mixed_requests(splits)]

    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    _, cut = _batch_cache(model, prefix, encoded, max(map(len, encoded)), max(map(len, encoded)) + 16)
    assert cut >= len(prefix.ids) - 2, "the cache should cover the shared prefix, not fall back to the plain path"

    plain = generate_batch(model, tokenizer, prompts, max_new_tokens=16)
    reused = generate_batch(model, tokenizer, prompts, max_new_tokens=16, prefix=prefix, shared=shared)
    assert reused == plain
    assert len({n for _, n in plain}) >= 1 and len(set(map(len, encoded))) == len(encoded)


def test_predict_reuses_by_default_and_matches_the_plain_path(tiny, policy, splits, candidates, tmp_path):
    model, tokenizer = tiny
    cases = sorted(splits["test"], key=lambda c: c.id)[:5]
    gen = GenerationSettings(max_new_tokens=8, batch_size=4)
    candidate = candidates["base"]
    plain = predict(model, tokenizer, policy, candidate, cases, "k", PredictionStore(tmp_path / "a"), gen, reuse_prefix=False)
    reused = predict(model, tokenizer, policy, candidate, cases, "k", PredictionStore(tmp_path / "b"), gen)
    assert {k: p.raw for k, p in reused.items()} == {k: p.raw for k, p in plain.items()}


@pytest.mark.parametrize("shared", [False, True], ids=["copied-per-row", "shared"])
def test_a_prompt_that_leaves_the_prefix_caps_the_reused_part(tiny, splits, candidates, shared):
    model, tokenizer = tiny
    render = lambda request: prompt_for(tokenizer, candidates["base"], request)  # noqa: E731
    prefix = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render))
    other = render("a request").replace("Rules:", "Rulez:")  # same length, leaves the prefix halfway
    prompts = [render("a request"), other]
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    width = max(map(len, encoded))
    _, cut = _batch_cache(model, prefix, encoded, width, width + 8)
    first_difference = next(i for i, (a, b) in enumerate(zip(encoded[1], prefix.ids)) if a != b)
    assert 0 < cut == width - len(encoded[1]) + first_difference < len(prefix.ids)
    assert _shared_cut(prefix, encoded) == first_difference
    assert generate_batch(model, tokenizer, prompts, 8, prefix=prefix, shared=shared) == generate_batch(model, tokenizer, prompts, 8)
