"""Assertions that print expected against got, field by field, with the raw output and the case's rules."""

from __future__ import annotations

import pytest
from tabulate import tabulate

from evals.dataset import printable
from evals.policy import DECISION_FIELDS


def _explain(title: str, case, prediction, rows) -> str:
    lines = [title, f"case {case.id} at {case.where}; rules: {', '.join(case.rules) or '-'}"]
    if not prediction.parsed.schema_valid:
        lines.append(f"parse: {prediction.parsed.kind}: " + "; ".join(prediction.parsed.errors))
    lines.append(tabulate(rows, headers=["field", "expected", "got", ""], tablefmt="simple"))
    lines.append("raw output: {" + printable(prediction.raw))
    lines.append("request: " + printable(case.request))
    return "\n".join(lines)


def assert_decision(candidate: str, case, prediction) -> None:
    """Fails unless the output honours the contract and all four decision fields equal the label."""
    __tracebackhide__ = True
    got = prediction.parsed.obj or {}
    rows = [(f, case.expected[f], got.get(f, "<missing>"), "ok" if got.get(f) == case.expected[f] else "WRONG") for f in DECISION_FIELDS]
    if prediction.parsed.schema_valid and all(r[3] == "ok" for r in rows):
        return
    pytest.fail(_explain(f"{candidate} got {case.id} wrong", case, prediction, rows), pytrace=False)


def assert_invariant(candidate: str, case, prediction, source_prediction, fields: tuple[str, ...]) -> None:
    """Fails when a rewrite that must not move these fields moved them (compared with the source's output)."""
    __tracebackhide__ = True
    got, before = prediction.parsed.obj or {}, source_prediction.parsed.obj or {}
    rows = [(f, before.get(f, "<missing>"), got.get(f, "<missing>"), "ok" if got.get(f) == before.get(f) else "MOVED") for f in fields]
    if all(r[3] == "ok" for r in rows):
        return
    pytest.fail(_explain(f"{candidate}: rewriting the request moved fields it must not move (expected = the source case's output)",
                         case, prediction, rows), pytrace=False)


def asserted(candidate: str, settings) -> bool:
    """The fine-tuned candidate is asserted; prompt-only ones are scored, and asserted only on request."""
    return candidate == "fine-tuned" or settings.assert_prompt_candidates
