"""max_new_tokens "auto": the longest labelled answer in the model's tokens plus a margin; an integer overrides."""

import math

from fixtures.budget import MIN_MARGIN, auto_max_new_tokens, longest_answer_tokens, resolve_output_budget
from fixtures.options import Settings
from fixtures.prompts import completion_text, encode_prompt, end_of_turn


def test_auto_is_the_longest_rendered_answer_plus_the_margin(tiny, splits):
    _, tokenizer = tiny
    eot = end_of_turn(tokenizer)
    per_case = {c.id: encode_prompt(tokenizer, completion_text(c.expected, eot)) for cases in splits.values() for c in cases}
    longest = max(map(len, per_case.values()))
    assert all(ids[-1] == tokenizer.convert_tokens_to_ids(eot) for ids in per_case.values()), "end-of-turn counted once"
    assert longest_answer_tokens(tokenizer, splits) == longest
    assert auto_max_new_tokens(tokenizer, splits) == longest + max(MIN_MARGIN, math.ceil(longest / 4))
    # The longest answer is in no particular split: removing that split lowers it.
    where = next(name for name, cases in splits.items() if any(len(per_case[c.id]) == longest for c in cases))
    assert longest_answer_tokens(tokenizer, {k: v for k, v in splits.items() if k != where}) <= longest


def fake_settings(max_new_tokens):
    fields = {name: None for name in Settings.__dataclass_fields__}
    return Settings(**{**fields, "max_new_tokens": max_new_tokens})


def test_an_integer_overrides_and_auto_resolves(tiny, splits):
    _, tokenizer = tiny
    assert resolve_output_budget(fake_settings(64), tokenizer, splits).max_new_tokens == 64
    assert resolve_output_budget(fake_settings(None), tokenizer, splits).max_new_tokens == auto_max_new_tokens(tokenizer, splits)
