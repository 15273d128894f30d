"""Schema-constrained decoding on the tiny fp32 model (random weights: left alone it writes '{{{{...' to the budget)."""

import hashlib
import json

import pytest

from evals.policy import OUTPUT_FIELDS
from evals.schema import schema_errors
from fixtures.candidates import load_candidates
from fixtures.constrain import SchemaConstraint, constrained_schema, reason_max_length, token_bound
from fixtures.generate import GenerationSettings, build_prefix_cache, generate_batch, stop_token_ids
from fixtures.parse import parse_output
from fixtures.predictions import PredictionStore, candidate_key, predict, prompt_for
from fixtures.prompts import PREFILL, answer_json, encode_prompt, fixed_prefix_ids


@pytest.fixture(scope="module")
def candidates(policy, splits):
    return {c.name: c for c in load_candidates(policy, splits["train"])}


def varied_requests(splits):
    """Very different lengths in one batch (so most rows are left-padded), and starts that can merge with the template."""
    by_length = sorted(splits["test"], key=lambda c: (len(c.request), c.id))
    return [by_length[0].request, by_length[-1].request, "ok", " leading space?", "\n\nblank lines first: a Glean bot."]


class Recorder:
    """The model, keeping what generate returned (generate_batch only hands back text and counts)."""

    def __init__(self, model):
        self.model, self.outputs = model, []

    def parameters(self):
        return self.model.parameters()

    def generate(self, **kwargs):
        out = self.model.generate(**kwargs)
        self.outputs.append((kwargs["input_ids"].shape[1], out))
        return out


def run_constrained(tiny, candidate, requests, prefix=False):
    """(budget, [(text, new tokens)], generated token rows) of one constrained batch."""
    model, tokenizer = tiny
    schema = json.loads(candidate.constraint)
    render = lambda r: prompt_for(tokenizer, candidate, r)  # noqa: E731
    cache = build_prefix_cache(model, fixed_prefix_ids(tokenizer, render)) if prefix else None
    recorder = Recorder(model)
    budget = token_bound(schema)
    outputs = generate_batch(recorder, tokenizer, [render(r) for r in requests], budget, prefix=cache,
                             logits_processor=SchemaConstraint(tokenizer, schema).processors())
    width, out = recorder.outputs[0]
    return budget, outputs, out[:, width:].tolist()


@pytest.fixture(scope="module")
def plain_constrained(tiny, splits, candidates):
    """base+schema on the varied batch, without prefix reuse, generated once for the tests below."""
    return run_constrained(tiny, candidates["base+schema"], varied_requests(splits))


def test_constrained_output_parses_validates_and_is_rendered_as_training_renders(tiny, policy, splits, candidates,
                                                                                  plain_constrained):
    _, tokenizer = tiny
    budget, outputs, _ = plain_constrained
    requests = varied_requests(splits)
    lengths = {len(encode_prompt(tokenizer, prompt_for(tokenizer, candidates["base+schema"], r))) for r in requests}
    assert len(lengths) == len(requests), "every row a different length: the batch is left-padded"
    for raw, n in outputs:
        parsed = parse_output(policy, PREFILL + raw)
        assert parsed.kind == "ok", (parsed.errors, raw)
        assert schema_errors(policy, parsed.obj) == []
        assert list(parsed.obj) == list(OUTPUT_FIELDS)
        assert PREFILL + raw == answer_json(parsed.obj), "keys, separators and spacing as training writes them"
        assert n <= budget


def test_generation_stops_at_end_of_turn_right_after_the_closing_brace(tiny, plain_constrained):
    _, tokenizer = tiny
    budget, outputs, rows = plain_constrained
    eot, pad = stop_token_ids(tokenizer)[0], tokenizer.pad_token_id
    for (raw, n), row in zip(outputs, rows):
        stop = row.index(eot)
        assert tokenizer.decode(row[:stop]) == raw and raw.endswith("}")
        assert n == stop + 1 < budget, "ended by the stop token, not by max_new_tokens"
        assert set(row[stop + 1:]) <= {pad}, "a finished row only pads while the others run on"


def test_the_reason_bound_keeps_a_rambling_model_inside_the_budget(policy, splits, candidates, plain_constrained):
    schema = json.loads(candidates["base+schema"].constraint)
    bound = schema["properties"]["reason"]["maxLength"]
    assert bound == max(len(c.expected["reason"]) for c in splits["train"]) + 32 == reason_max_length(splits["train"])
    _, outputs, _ = plain_constrained
    # Random weights ramble: the reason runs to the bound and the grammar closes the object there.
    assert max(len(parse_output(policy, PREFILL + raw).obj["reason"]) for raw, _ in outputs) == bound


def test_every_labelled_answer_is_allowed_by_the_constraint(policy, splits):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(constrained_schema(policy, reason_max_length(splits["train"])))
    for split, cases in splits.items():
        for case in cases:
            assert not list(validator.iter_errors(case.expected)), (split, case.id)


@pytest.mark.parametrize("name", ["base+schema", "fine-tuned+schema"])
def test_prefix_reuse_gives_the_same_constrained_outputs(tiny, splits, candidates, plain_constrained, name):
    requests = varied_requests(splits)
    plain = plain_constrained[1] if name == "base+schema" else run_constrained(tiny, candidates[name], requests)[1]
    assert run_constrained(tiny, candidates[name], requests, prefix=True)[1] == plain


def test_predict_constrains_only_constrained_candidates(tiny, policy, splits, candidates, tmp_path, monkeypatch):
    import fixtures.predictions as predictions_module

    model, tokenizer = tiny
    cases = sorted(splits["test"], key=lambda c: c.id)[:3]
    gen = GenerationSettings(max_new_tokens=token_bound(json.loads(candidates["base+schema"].constraint)), batch_size=4)
    calls = []
    real = predictions_module.generate_batch
    monkeypatch.setattr(predictions_module, "generate_batch", lambda *a, **k: calls.append(sorted(k)) or real(*a, **k))

    plain = predict(model, tokenizer, policy, candidates["base"], cases, "a", PredictionStore(tmp_path / "a"), gen)
    assert calls == [["prefix", "shared"]], "the unconstrained path passes nothing new to generate_batch"
    order = sorted(cases, key=lambda c: (-len(c.request), c.id))  # predict's batch order
    direct = real(model, tokenizer, [prompt_for(tokenizer, candidates["base"], c.request) for c in order], gen.max_new_tokens)
    assert [(plain[c.id].raw, plain[c.id].new_tokens) for c in order] == direct, "the same outputs as plain generation"
    assert not any(p.parsed.schema_valid for p in plain.values())

    calls.clear()
    constrained = predict(model, tokenizer, policy, candidates["base+schema"], cases, "b", PredictionStore(tmp_path / "b"), gen)
    assert calls == [["logits_processor", "prefix", "shared"]]
    assert all(p.parsed.schema_valid for p in constrained.values())


def old_candidate_key(candidate, base_identity, runtime_label, adapter_key, chat_template, generation) -> str:
    """candidate_key as it was before constraints existed (fixtures/predictions.py at the commit before them)."""
    identity = {
        "base": base_identity, "runtime": runtime_label, "adapter": adapter_key, "system": candidate.system,
        "shots": candidate.shots, "chat_template": chat_template, "prefill": PREFILL, "generation": generation.to_dict(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def test_unconstrained_keys_are_unchanged_and_a_constraint_changes_the_key(candidates):
    args = ("gguf-sha256:x", "cpu-fp32", None, "t", GenerationSettings(128, 8))
    for name in ("base", "few-shot", "fine-tuned"):
        assert candidate_key(candidates[name], *args) == old_candidate_key(candidates[name], *args)
        twin = candidates[f"{name}+schema"]
        assert (twin.system, twin.shots, twin.adapter, twin.constrain) == (*[getattr(candidates[name], f) for f in ("system", "shots", "adapter")], "schema")
        assert candidate_key(twin, *args) != candidate_key(candidates[name], *args)


def with_decoder(tokenizer, decoder: dict):
    """A copy of a fast tokenizer with another decoder (same vocabulary, same ids for every text)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = {**json.loads(tokenizer.backend_tokenizer.to_str()), "decoder": decoder}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token=tokenizer.eos_token,
                                   pad_token=tokenizer.pad_token, chat_template=tokenizer.chat_template)


# How transformers 5.17 writes the default model's tokenizer when it converts the GGUF (seen on the GPU machine).
SEQUENCE_DECODER = {"type": "Sequence", "decoders": [
    {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}


def test_a_sequence_decoder_is_read_as_bytes_and_constrains_as_the_plain_one(tiny, splits, candidates, plain_constrained):
    import llguidance.hf

    from fixtures.constrain import PROBE, checked_ll_tokenizer

    model, tokenizer = tiny
    sequenced = with_decoder(tokenizer, SEQUENCE_DECODER)
    ids = sequenced(PROBE, add_special_tokens=False)["input_ids"]
    assert ids == tokenizer(PROBE, add_special_tokens=False)["input_ids"]
    assert llguidance.hf.from_tokenizer(sequenced).decode_bytes(ids) != PROBE.encode(), "the hazard: llguidance misreads it"
    assert checked_ll_tokenizer(sequenced, stop_token_ids(tokenizer)[0]).decode_bytes(ids) == PROBE.encode()
    outputs = run_constrained((model, sequenced), candidates["base+schema"], varied_requests(splits))[1]
    assert outputs == plain_constrained[1]


def test_a_tokenizer_llguidance_cannot_read_back_is_an_error(tiny, candidates):
    _, tokenizer = tiny
    fused_only = with_decoder(tokenizer, {"type": "Fuse"})  # byte-level vocabulary, no ByteLevel step to fall back on
    with pytest.raises(ValueError, match="reads this tokenizer's ids back as other bytes"):
        SchemaConstraint(fused_only, json.loads(candidates["base+schema"].constraint))
