"""Assertions that print expected against got, field by field and run by run, with the raw output and the case's rules.

A run is one set of weights (one training seed of the fine-tuned candidate); an asserted case must be right in all."""

from __future__ import annotations

import pytest
from tabulate import tabulate

from evals.dataset import printable
from evals.policy import DECISION_FIELDS


def _explain(title: str, case, runs: dict, rows) -> str:
    lines = [title, f"case {case.id} at {case.where}; rules: {', '.join(case.rules) or '-'}"]
    lines.append(tabulate(rows, headers=["run", "field", "expected", "got", ""], tablefmt="simple"))
    for label, prediction in runs.items():
        if not prediction.parsed.schema_valid:
            lines.append(f"{label} parse: {prediction.parsed.kind}: " + "; ".join(prediction.parsed.errors))
        lines.append(f"{label} raw output: {{" + printable(prediction.raw))
    lines.append("request: " + printable(case.request))
    return "\n".join(lines)


def assert_decision(candidate: str, case, runs: dict) -> None:
    """Fails unless every run's output honours the contract and all four decision fields equal the label."""
    __tracebackhide__ = True
    rows, ok = [], True
    for label, prediction in runs.items():
        got = prediction.parsed.obj or {}
        for f in DECISION_FIELDS:
            right = got.get(f) == case.expected[f]
            ok &= right and prediction.parsed.schema_valid
            rows.append((label, f, case.expected[f], got.get(f, "<missing>"), "ok" if right else "WRONG"))
    if ok:
        return
    pytest.fail(_explain(f"{candidate} got {case.id} wrong", case, runs, rows), pytrace=False)


def assert_invariant(candidate: str, case, runs: dict, source_runs: dict, fields: tuple[str, ...]) -> None:
    """Fails when a rewrite that must not move these fields moved them in any run (against that run's source output)."""
    __tracebackhide__ = True
    rows, moved = [], False
    for label, prediction in runs.items():
        got, before = prediction.parsed.obj or {}, source_runs[label].parsed.obj or {}
        for f in fields:
            same = got.get(f) == before.get(f)
            moved |= not same
            rows.append((label, f, before.get(f, "<missing>"), got.get(f, "<missing>"), "ok" if same else "MOVED"))
    if not moved:
        return
    pytest.fail(_explain(f"{candidate}: rewriting the request moved fields it must not move (expected = the source case's output)",
                         case, runs, rows), pytrace=False)


def asserted(candidate: str, settings) -> bool:
    """The fine-tuned candidate is asserted; prompt-only ones are scored, and asserted only on request."""
    return candidate == "fine-tuned" or settings.assert_prompt_candidates
