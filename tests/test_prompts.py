"""One prompt builder: what the trainer sees is what the predictor sends, then '{', then the end-of-turn token."""

import pytest

from evals.policy import OUTPUT_FIELDS
from fixtures.generate import generate_batch, stop_token_ids
from fixtures.prompts import (PREFILL, common_prefix_len, encode_prompt, encode_prompts, end_of_turn, messages,
                              render_prompt, shared_head)
from fixtures.predictions import prompt_for
from fixtures.candidates import load_candidates
from training.recipe import build_dataset


def test_end_of_turn_is_the_templates_closing_token(tiny):
    _, tokenizer = tiny
    assert end_of_turn(tokenizer) == "<|im_end|>"
    assert stop_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_prompt_ends_with_the_assistant_turn_and_the_prefill(tiny, policy):
    _, tokenizer = tiny
    text = render_prompt(tokenizer, messages(policy.short_system_prompt, "hello"))
    assert text.endswith("<|im_start|>assistant\n" + PREFILL)


def test_trainer_prompt_equals_predictor_prompt(tiny, policy, splits):
    """Token for token, every training example starts with the exact prompt the fine-tuned candidate sends."""
    _, tokenizer = tiny
    fine_tuned = {c.name: c for c in load_candidates(policy, splits["train"])}["fine-tuned"]
    cases = sorted(splits["train"], key=lambda c: c.id)[:12]
    rows = build_dataset(tokenizer, fine_tuned.system, cases)
    for case, row in zip(cases, rows):
        sent = encode_prompt(tokenizer, prompt_for(tokenizer, fine_tuned, case.request))
        assert row["input_ids"][: len(sent)] == sent
        answer = row["input_ids"][len(sent):]
        assert row["labels"] == [-100] * len(sent) + answer  # loss on the answer only
        decoded = tokenizer.decode(answer)
        assert decoded.endswith("<|im_end|>")
        assert list(__import__("json").loads(PREFILL + decoded[: -len("<|im_end|>")])) == list(OUTPUT_FIELDS)


def test_left_padded_batch_equals_one_by_one(tiny, policy, splits):
    model, tokenizer = tiny
    requests = [c.request for c in sorted(splits["test"], key=lambda c: len(c.request))[::9][:5]]
    prompts = [render_prompt(tokenizer, messages(policy.short_system_prompt, r)) for r in requests]
    batched = generate_batch(model, tokenizer, prompts, max_new_tokens=12)
    single = [generate_batch(model, tokenizer, [p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single


def test_generation_stops_at_the_end_of_turn_token(tiny, policy):
    """Generation is asked to stop at <|im_end|>, and the text is cut there (the stop token is not kept)."""
    import torch

    _, tokenizer = tiny
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    words = tokenizer('"tier": "x"', add_special_tokens=False)["input_ids"]
    seen = {}

    class ScriptedModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def generate(self, input_ids, attention_mask, generation_config):
            seen["config"] = generation_config
            tail = torch.tensor([words + [stop] + words] * input_ids.shape[0])
            return torch.cat([input_ids, tail], dim=1)

    prompt = render_prompt(tokenizer, messages(policy.short_system_prompt, "anything"))
    (text, n), = generate_batch(ScriptedModel(), tokenizer, [prompt], max_new_tokens=20)
    assert text == '"tier": "x"' and n == len(words) + 1
    assert stop in seen["config"].eos_token_id and seen["config"].do_sample is False


def test_encoding_prompts_in_one_call_gives_each_prompts_own_tokens(tiny, policy, splits):
    _, tokenizer = tiny
    candidates = load_candidates(policy, splits["train"])
    prompts = [prompt_for(tokenizer, c, case.request) for c in candidates for case in splits["test"][:5]]
    prompts += ["", " leading space", "\n\nblank lines first"]
    assert encode_prompts(tokenizer, prompts) == [encode_prompt(tokenizer, p) for p in prompts]
    assert encode_prompts(tokenizer, []) == []


@pytest.mark.parametrize("name", ["base", "few-shot", "fine-tuned"])
def test_a_candidates_shared_start_is_encoded_once_with_the_same_tokens(tiny, policy, splits, name):
    _, tokenizer = tiny
    candidate = next(c for c in load_candidates(policy, splits["train"]) if c.name == name)
    prompts = [prompt_for(tokenizer, candidate, case.request) for case in splits["test"][:6]]
    cut = shared_head(tokenizer, prompts)
    assert 0 < cut < min(map(len, prompts)) and prompts[0][:cut].endswith("<|im_start|>")  # the request's user turn
    assert encode_prompts(tokenizer, prompts) == [encode_prompt(tokenizer, p) for p in prompts]


def test_a_tokenizer_that_merges_across_the_special_token_gets_every_prompt_encoded_whole():
    from tokenizers import AddedToken

    class MergingTokenizer:
        """Characters as tokens, except that "<s>x" is one token: a merge across the special token's end."""
        added_tokens_decoder = {0: AddedToken("<s>", special=True)}

        def __call__(self, text, add_special_tokens=False):
            def encode(t):
                out, i = [], 0
                while i < len(t):
                    if t.startswith("<s>x", i):
                        out, i = out + [999], i + 4
                    elif t.startswith("<s>", i):
                        out, i = out + [0], i + 3
                    else:
                        out, i = out + [ord(t[i])], i + 1
                return out
            return {"input_ids": [encode(t) for t in text] if isinstance(text, list) else encode(text)}

    tokenizer, prompts = MergingTokenizer(), ["a<s>xb", "a<s>xc"]
    assert shared_head(tokenizer, prompts) == 4
    assert encode_prompts(tokenizer, prompts) == [[97, 999, 98], [97, 999, 99]]
    assert shared_head(tokenizer, ["a<s>b", "c"]) == shared_head(tokenizer, ["only one<s>"]) == 0


def test_common_prefix_len_counts_the_leading_tokens_both_share():
    import random

    def one_by_one(a, b):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    rng = random.Random(0)
    for _ in range(3000):
        a = [rng.randint(0, 2) for _ in range(rng.randint(0, 40))]
        b = a[: rng.randint(0, len(a))] + [rng.randint(0, 2) for _ in range(rng.randint(0, 8))]
        assert common_prefix_len(a, b) == common_prefix_len(b, a) == one_by_one(a, b)
