"""A --cases file: a user's labelled JSONL, scored by every candidate in place of the test split.

A row needs `id`, `request` and the four decision fields, either under `expected` (the dataset's row format) or at
the top level of the row. `reason` may be left out and is never read (nothing scores it); `rules` may be left out
and, when given, are checked as in the project's splits. Every case is keyed `cases:<id>` (Case.key), so an id in
the file never collides with a test-split id; messages show the id as written and file:line.

Errors (DatasetError, `file:line: field 'f': what`): an empty file, a duplicate id (naming both lines), a
decision field at the top level beside `expected`, and whatever a split's row can get wrong. A key the suite
does not read is a CasesFileWarning naming the file, line and key, and is ignored.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

from evals.dataset import Case, DatasetError, Problem, check_row, make_case, parse_row, read_lines
from evals.policy import DECISION_FIELDS, OUTPUT_FIELDS, Policy

SPLIT = "cases"
NAMESPACE = "cases"
TOP_KEYS = ("id", "request", "expected", "rules")
NEEDS = f"a row needs id, request and {', '.join(DECISION_FIELDS)}, at the top level or under 'expected'"


class CasesFileWarning(UserWarning):
    """A --cases row carries a key the suite does not read."""


def load_cases_file(path: Path | str, policy: Policy) -> list[Case]:
    """Every row as a Case of split and namespace `cases`; DatasetError listing every problem, sorted by line."""
    shown, lines, problems = read_lines(path)
    cases: list[Case] = []
    first_line: dict[str, int] = {}
    for lineno, text in lines:
        row = parse_row(shown, lineno, text)
        if isinstance(row, list):
            problems += row
            continue
        duplicate = _duplicate(shown, lineno, row.get("id"), first_line)
        shaped = _nested(shown, lineno, row)
        if isinstance(shaped, list):
            problems += duplicate + shaped
            continue
        nested, flat = shaped
        checked = check_row(shown, lineno, nested, policy, require_rules=False, labelled=DECISION_FIELDS)
        if isinstance(checked, list):
            problems += duplicate + [replace(p, field=p.field.removeprefix("expected.")) if flat else p for p in checked]
        elif duplicate:
            problems += duplicate
        else:
            cases.append(make_case(checked, SPLIT, shown, lineno, labelled=DECISION_FIELDS, namespace=NAMESPACE))
    if problems:
        raise DatasetError(sorted(problems, key=lambda p: p.line))
    return cases


def _duplicate(shown: str, lineno: int, case_id, first_line: dict[str, int]) -> list[Problem]:
    if not isinstance(case_id, str):
        return []
    if case_id in first_line:
        return [Problem(shown, lineno, "id", f"duplicate id {case_id!r}, first on line {first_line[case_id]}")]
    first_line[case_id] = lineno
    return []


def _nested(shown: str, lineno: int, row: dict) -> tuple[dict, bool] | list[Problem]:
    """(the row in the dataset's format, whether it was flat), warning about keys that are not read; or problems."""
    for key in ("id", "request"):
        if key not in row:
            return [Problem(shown, lineno, key, f"missing field {key!r} ({NEEDS})")]
    flat = "expected" not in row
    for key in row:
        if key in TOP_KEYS or (flat and key in OUTPUT_FIELDS):
            continue
        if key in OUTPUT_FIELDS:
            return [Problem(shown, lineno, key, "at the top level beside 'expected'; give the label in one place, flat or under 'expected'")]
        _warn(shown, lineno, key)
    if not flat:
        expected = row["expected"]
        if isinstance(expected, dict):
            for key in expected:
                if key not in OUTPUT_FIELDS:
                    _warn(shown, lineno, f"expected.{key}")
            row = {**row, "expected": {k: v for k, v in expected.items() if k in DECISION_FIELDS}}
        return row, False
    missing = [k for k in DECISION_FIELDS if k not in row]
    if missing and len(missing) < len(DECISION_FIELDS):
        return [Problem(shown, lineno, missing[0], f"missing field {missing[0]!r} ({NEEDS})")]
    if missing:
        return [Problem(shown, lineno, "expected", f"no decision: neither 'expected' nor the fields themselves ({NEEDS})")]
    return {**{k: v for k, v in row.items() if k in TOP_KEYS}, "expected": {k: row[k] for k in DECISION_FIELDS}}, True


def _warn(shown: str, lineno: int, key: str) -> None:
    message = f"unknown key {key.split('.')[-1]!r}, ignored (the suite reads {', '.join(TOP_KEYS)} and {', '.join(OUTPUT_FIELDS)})"
    warnings.warn(CasesFileWarning(str(Problem(shown, lineno, key, message))), stacklevel=3)
