"""The dataset gate: checks across splits that no single row can see (ids, coverage, leakage)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from evals.dataset import Case, Problem
from evals.policy import Policy

# A val/test request leaks when, after normalizing, it equals a train request or
# shares at least this fraction of its distinct words with one (Jaccard over word sets).
# 0.6 catches one template with swapped nouns ("finance wants an agent that updates
# vendor records" vs "procurement wants an agent that updates vendor records" = 0.75)
# while two requests that merely share domain words ("dashboard", "sql") stay far below.
DEFAULT_LEAK_JACCARD = 0.6
DEFAULT_MINIMUMS = {"train": 8, "val": 2, "test": 3}


@dataclass(frozen=True)
class GateSettings:
    leak_jaccard: float = DEFAULT_LEAK_JACCARD
    minimums: tuple[tuple[str, int], ...] = tuple(DEFAULT_MINIMUMS.items())


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def jaccard(a: set, b: set) -> float:
    """Shared share of two word sets."""
    return len(a & b) / len(a | b) if a | b else 1.0


def duplicate_ids(splits: dict[str, list[Case]]) -> list[Problem]:
    first: dict[str, Case] = {}
    problems = []
    for cases in splits.values():
        for case in cases:
            if case.id in first:
                problems.append(Problem(case.path, case.line, "id", f"duplicate id {case.id!r}, first at {first[case.id].where}"))
            else:
                first.setdefault(case.id, case)
    return problems


def coverage(splits: dict[str, list[Case]], policy: Policy, settings: GateSettings = GateSettings()) -> list[Problem]:
    problems = []
    for split, minimum in settings.minimums:
        cases = splits.get(split, [])
        counts = Counter(rule for case in cases for rule in case.rules)
        path = cases[0].path if cases else f"{split}.jsonl"
        for rule_id in policy.rule_ids:
            if counts[rule_id] < minimum:
                problems.append(Problem(path, 0, "rules", f"rule {rule_id!r} has {counts[rule_id]} {split} example(s), needs at least {minimum}"))
    return problems


def leaks(splits: dict[str, list[Case]], settings: GateSettings = GateSettings()) -> list[Problem]:
    """Val and test requests that equal or nearly equal a train request, and test requests close to val."""
    pairs = [("val", "train"), ("test", "train"), ("test", "val")]
    problems = []
    for held_out, seen in pairs:
        seen_cases = [(c, normalize(c.request), set(normalize(c.request).split())) for c in splits.get(seen, [])]
        for case in splits.get(held_out, []):
            norm = normalize(case.request)
            words = set(norm.split())
            for other, other_norm, other_words in seen_cases:
                score = jaccard(words, other_words)
                if norm == other_norm or score >= settings.leak_jaccard:
                    how = "equals" if norm == other_norm else f"is {score:.2f} similar (threshold {settings.leak_jaccard}) to"
                    problems.append(Problem(case.path, case.line, "request", f"{held_out} case {case.id!r} {how} {seen} case {other.id!r} at {other.where}"))
                    break
    return problems


def gate_problems(splits: dict[str, list[Case]], policy: Policy, settings: GateSettings = GateSettings()) -> list[Problem]:
    return duplicate_ids(splits) + coverage(splits, policy, settings) + leaks(splits, settings)
