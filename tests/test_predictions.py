"""Predictions: cached by candidate identity and request, generated once, never re-generated on a rerun."""

from dataclasses import replace

import pytest

from fixtures.candidates import load_candidates
from fixtures.generate import GenerationSettings
from fixtures.predictions import PredictionStore, candidate_key, predict

GEN = GenerationSettings(max_new_tokens=8, batch_size=4)


@pytest.fixture
def candidates(policy, splits):
    return {c.name: c for c in load_candidates(policy, splits["train"])}


def key_of(candidate, **over):
    args = dict(base_identity="gguf-sha256:x", runtime_label="cpu-fp32", adapter_key=None, chat_template="t", generation=GEN)
    args.update(over)
    return candidate_key(candidate, **args)


def test_key_covers_what_shapes_the_output(candidates):
    base = candidates["base"]
    keys = {
        key_of(base),
        key_of(replace(base, system=base.system + " ")),
        key_of(base, adapter_key="abc"),
        key_of(base, generation=GenerationSettings(8, 8)),  # batch size is part of the identity
        key_of(base, runtime_label="cuda-nf4-bf16"),
        key_of(base, chat_template="t2"),
        key_of(candidates["few-shot"]),
    }
    assert len(keys) == 7


def test_second_run_generates_nothing_and_a_changed_prompt_misses(tiny, policy, splits, candidates, tmp_path, monkeypatch):
    import fixtures.predictions as predictions_module

    model, tokenizer = tiny
    cases = sorted(splits["test"], key=lambda c: c.id)[:6]
    store = PredictionStore(tmp_path)
    candidate = candidates["fine-tuned"]
    first = predict(model, tokenizer, policy, candidate, cases, key_of(candidate), store, GEN)
    assert not any(p.cached for p in first.values())

    calls = []
    real = predictions_module.generate_batch
    monkeypatch.setattr(predictions_module, "generate_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = predict(model, tokenizer, policy, candidate, cases, key_of(candidate), store, GEN)
    assert calls == [] and all(p.cached for p in second.values())
    assert [p.raw for p in second.values()] == [p.raw for p in first.values()]
    # what each request cost is measured once, when generated, and a cached prediction keeps it
    assert [p.cost for p in second.values()] == [p.cost for p in first.values()]
    for p in first.values():
        assert p.cost["prompt_tokens"] > 0 and p.cost["batch_seconds"] > 0 and 1 <= p.cost["batch_rows"] <= GEN.batch_size
    assert sum(1 / p.cost["batch_rows"] for p in first.values()) == pytest.approx(2)  # 6 cases in batches of 4 and 2

    changed = replace(candidate, system=candidate.system + " Be brief.")
    third = predict(model, tokenizer, policy, changed, cases, key_of(changed), store, GEN)
    assert calls and not any(p.cached for p in third.values())


def test_a_case_is_generated_with_the_same_neighbours_whatever_is_asked(tiny, policy, splits, candidates, tmp_path,
                                                                          monkeypatch):
    """A filtered run, a run on a partly filled cache and a full run batch every case the same way (fixed_batches):
    asking for one case generates its whole batch and stores the batch's other rows, which later runs reuse."""
    import fixtures.predictions as predictions_module
    from fixtures.predictions import fixed_batches

    model, tokenizer = tiny
    policy_cases = sorted(splits["test"], key=lambda c: c.id)[:6]
    other = sorted(splits["val"], key=lambda c: c.id)[:3]
    groups = [policy_cases, other + policy_cases[:1]]  # a case in two groups is batched with the first
    plan = fixed_batches(groups, GEN.batch_size)
    assert [len(b) for b in plan] == [4, 2, 3]
    assert [c.key for b in plan[:2] for c in b] == [c.key for c in sorted(policy_cases, key=lambda c: (-len(c.request), c.key))]

    batches = []
    real = predictions_module.generate_batch
    monkeypatch.setattr(predictions_module, "generate_batch",
                        lambda m, t, prompts, *a, **k: batches.append(len(prompts)) or real(m, t, prompts, *a, **k))
    candidate = candidates["fine-tuned"]
    one = plan[0][2]
    store = PredictionStore(tmp_path / "filtered")
    first = predict(model, tokenizer, policy, candidate, [one], key_of(candidate), store, GEN, groups=groups)
    assert batches == [4] and list(first) == [one.key] and not first[one.key].cached
    again = predict(model, tokenizer, policy, candidate, plan[0], key_of(candidate), store, GEN, groups=groups)
    assert batches == [4] and all(p.cached for p in again.values())  # the batch's other rows were stored

    everything = [c for group in groups for c in group]
    full = predict(model, tokenizer, policy, candidate, everything, key_of(candidate), PredictionStore(tmp_path / "full"),
                   GEN, groups=groups)
    assert batches == [4, 4, 2, 3]
    assert {k: p.raw for k, p in again.items()} == {c.key: full[c.key].raw for c in plan[0]}
    outside = sorted(splits["train"], key=lambda c: c.id)[:1]  # not in any group: batched as a group of its own
    predict(model, tokenizer, policy, candidate, outside, key_of(candidate), store, GEN, groups=groups)
    assert batches == [4, 4, 2, 3, 1]


def test_few_shot_examples_cover_every_rule(policy, splits, candidates):
    shots = candidates["few-shot"].shots
    by_request = {c.request: c for c in splits["train"]}
    covered = {rule for request, _ in shots for rule in by_request[request].rules}
    assert covered == set(policy.rule_ids)
    assert candidates["base"].shots == () and candidates["fine-tuned"].system == policy.short_system_prompt


def test_a_registry_entry_adds_a_candidate(policy, splits, tmp_path):
    registry = tmp_path / "candidates.json"
    registry.write_text('[{"name": "terse", "prompt": "text:Answer in JSON.", "shots": "none", "adapter": "none"}]')
    (terse,) = load_candidates(policy, splits["train"], registry)
    assert terse.system == "Answer in JSON." and not terse.uses_adapter
    registry.write_text('[{"name": "x", "prompt": "clever", "shots": "none", "adapter": "none"}]')
    with pytest.raises(ValueError, match=r"candidates.json:1: field '\[0\].prompt'"):
        load_candidates(policy, splits["train"], registry)
