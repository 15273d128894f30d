"""Reading labelled cases from JSONL, with problems named by file, line and field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from evals.jsonfile import dotted, loads_strict
from evals.policy import OUTPUT_FIELDS, Policy
from evals.schema import schema_errors

DATA_DIR = Path(__file__).parent / "data"
SPLITS = ("train", "val", "test")
ROW_KEYS = ("id", "request", "expected", "rules")
# Case.key joins a namespace and an id with this; the project's split ids may not contain it, so a namespaced key
# ("cases:fin_017", a --cases file's row) never equals a split id.
KEY_SEP = ":"
# A request longer than this fails the gate. Characters, not tokens: no tokenizer is needed, so the gate stays
# instant. 1,000 characters is about 250 tokens of English at ~4 characters a token, the request budget the
# batch-size chooser assumes (256 tokens, fixtures/batch_size.py) and far inside any model's context; the
# longest shipped request has 375 characters.
MAX_REQUEST_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Text with control characters escaped (\\n, \\x1b, ...), safe to print in a failure message."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return printable(f"{self.path}:{self.line}: field '{self.field}': {self.message}")


class DatasetError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Case:
    id: str
    request: str
    expected: dict  # the five output fields
    rules: tuple[str, ...]
    split: str
    path: str
    line: int
    namespace: str = ""  # "" for the project's splits and their bias variants; "cases" for a --cases file

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def key(self) -> str:
        """What every lookup uses (predictions, records, bias sources, selection): the id itself for the project's
        splits, `<namespace>:<id>` otherwise, so a --cases row never collides with a test case. Shown: `id`."""
        return f"{self.namespace}{KEY_SEP}{self.id}" if self.namespace else self.id

    @property
    def decision_rule(self) -> str | None:
        return self.rules[0] if self.rules else None


def split_path(split: str, data_dir: Path = DATA_DIR) -> Path:
    return Path(data_dir) / f"{split}.jsonl"


def read_lines(path: Path | str) -> tuple[str, list[tuple[int, str]], list[Problem]]:
    """(path as shown, [(line number, text)] of every non-blank line, problems): unreadable, not UTF-8, or empty."""
    path = Path(path)
    shown = _shown(path)
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        return shown, [], [Problem(shown, 0, "<file>", f"cannot read: {exc}")]
    if not any(line.strip() for line in raw_lines):
        return shown, [], [Problem(shown, 0, "<file>", "the file is empty: it holds no rows")]
    lines, problems = [], []
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(shown, lineno, "<encoding>", f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}"))
            continue
        if text.strip():
            lines.append((lineno, text))
    return shown, lines, problems


def parse_row(shown: str, lineno: int, text: str) -> dict | list[Problem]:
    """One line as a JSON object, or the problems with it: malformed, not an object, a key given twice, or a string
    that is not valid Unicode (a lone surrogate written as a JSON escape, which would fail far from here)."""
    try:
        row, found = loads_strict(text)
    except json.JSONDecodeError as exc:
        return [Problem(shown, lineno, "<json>", f"malformed JSON: {exc.msg} at column {exc.colno}")]
    if found:
        return [Problem(shown, lineno, dotted(path), message) for path, message in found]
    if not isinstance(row, dict):
        return [Problem(shown, lineno, "<json>", f"expected an object, got {type(row).__name__}")]
    return row


def make_case(row: dict, split: str, shown: str, lineno: int, labelled: tuple[str, ...] = OUTPUT_FIELDS, namespace: str = "") -> Case:
    """A Case from a row that check_row accepted."""
    return Case(id=row["id"], request=row["request"], expected={k: row["expected"][k] for k in labelled},
                rules=tuple(row.get("rules") or ()), split=split, path=shown, line=lineno, namespace=namespace)


def read_cases(path: Path | str, policy: Policy, split: str, require_rules: bool = True) -> tuple[list[Case], list[Problem]]:
    """Every well-formed row as a Case, and every problem found; never raises on bad rows."""
    shown, lines, problems = read_lines(path)
    cases: list[Case] = []
    for lineno, text in lines:
        row = parse_row(shown, lineno, text)
        if not isinstance(row, list):
            unknown = [Problem(shown, lineno, key, f"unknown field {key!r} (a row has {', '.join(ROW_KEYS)})")
                       for key in row if key not in ROW_KEYS]
            row = check_row(shown, lineno, row, policy, require_rules)
            if unknown:
                row = unknown + (row if isinstance(row, list) else [])
        if not isinstance(row, list) and KEY_SEP in row["id"]:
            row = [Problem(shown, lineno, "id", f"{row['id']!r} contains {KEY_SEP!r}, kept for namespaced keys "
                                               f"(a --cases row is keyed 'cases{KEY_SEP}<id>', evals/dataset.py Case.key)")]
        if isinstance(row, list):
            problems.extend(row)
        else:
            cases.append(make_case(row, split, shown, lineno))
    return cases, sorted(problems, key=lambda p: p.line)


def load_cases(path: Path | str, policy: Policy, split: str, require_rules: bool = True) -> list[Case]:
    cases, problems = read_cases(path, policy, split, require_rules)
    if problems:
        raise DatasetError(problems)
    return cases


def load_splits(policy: Policy, data_dir: Path = DATA_DIR) -> dict[str, list[Case]]:
    return {split: load_cases(split_path(split, data_dir), policy, split) for split in SPLITS}


def check_row(shown: str, lineno: int, row: dict, policy: Policy, require_rules: bool = True,
              labelled: tuple[str, ...] = OUTPUT_FIELDS) -> dict | list[Problem]:
    """The row when it holds a valid case, else its problems. labelled: the label fields it must carry and that are
    checked (all five in the project's splits; a --cases file's rows need only the four decision fields)."""
    def problem(field: str, message: str) -> list[Problem]:
        return [Problem(shown, lineno, field, message)]

    required = ROW_KEYS if require_rules else ROW_KEYS[:3]
    missing = [k for k in required if k not in row]
    if missing:
        return problem(missing[0], f"missing field {missing[0]!r} (a row needs {', '.join(required)})")
    if not isinstance(row["id"], str) or not row["id"].strip():
        return problem("id", "must be a non-empty string")
    if not isinstance(row["request"], str) or not row["request"].strip():
        return problem("request", "must be a non-empty string")
    if len(row["request"]) > MAX_REQUEST_CHARS:
        return problem("request", f"{len(row['request']):,} characters, longer than the limit of {MAX_REQUEST_CHARS:,} (evals/dataset.py MAX_REQUEST_CHARS)")
    if not isinstance(row["expected"], dict):
        return problem("expected", f"must be an object with the fields {', '.join(labelled)}")
    unchecked = set(OUTPUT_FIELDS) - set(labelled)
    errors = [e for e in schema_errors(policy, row["expected"]) if e[0] not in unchecked]
    if errors:
        return [Problem(shown, lineno, f"expected.{f}", msg) for f, _, msg in errors]
    rules = row.get("rules")
    if rules is not None and (not isinstance(rules, list) or not all(isinstance(r, str) for r in rules)):
        return problem("rules", "must be a list of rule ids")
    if rules or require_rules:
        found = policy.label_problems(rules or [], row["expected"])
        if found:
            return [Problem(shown, lineno, f if f == "rules" else f"expected.{f}", m) for f, m in found]
    return row


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
