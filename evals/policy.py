"""The routing policy as data: vocabulary, rules with stable ids, and what each rule decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

POLICY_PATH = Path(__file__).parent / "data" / "policy.json"
POLICY_SCHEMA = Path(__file__).parent / "data" / "policy.schema.json"
DECISION_FIELDS = ("tier", "risk", "recommended_platform", "needs_review")
OUTPUT_FIELDS = (*DECISION_FIELDS, "reason")


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str  # "decision" fixes all four decision fields; "modifier" only constrains them
    text: str
    decision: dict = field(default_factory=dict)
    constraint: dict = field(default_factory=dict)
    examples: tuple[str, ...] = ()

    def violations(self, expected: dict) -> list[tuple[str, str]]:
        """(field, message) for every way `expected` disagrees with this rule."""
        wanted = dict(self.decision) if self.kind == "decision" else {
            k: v for k, v in self.constraint.items() if k in DECISION_FIELDS
        }
        out = [
            (name, f"rule '{self.id}' requires {value!r}, got {expected.get(name)!r}")
            for name, value in wanted.items()
            if expected.get(name) != value
        ]
        for banned in self.constraint.get("recommended_platform_not", ()):
            if expected.get("recommended_platform") == banned:
                out.append(("recommended_platform", f"rule '{self.id}' forbids {banned!r}"))
        return out


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one policy object per load
class Policy:
    name: str
    version: int
    task: str
    vocabulary: dict  # field -> list of allowed strings (enum fields only)
    rules: tuple[Rule, ...]
    short_system_prompt: str
    source: str
    must_pass: tuple = ()  # invariants as data (evals/must_pass.py judges them)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    @property
    def decision_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "decision")

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(f"{self.source}: no rule with id {rule_id!r} (known: {', '.join(self.rule_ids)})")

    def label_problems(self, rule_ids: list[str] | tuple[str, ...], expected: dict) -> list[tuple[str, str]]:
        """(field, message) pairs saying where a labelled decision disagrees with the rules it is tagged with."""
        unknown = [r for r in rule_ids if r not in self.rule_ids]
        if unknown:
            return [("rules", f"unknown rule id(s) {unknown}; known: {list(self.rule_ids)}")]
        decisions = [r for r in rule_ids if self.rule(r).kind == "decision"]
        if len(decisions) != 1:
            return [("rules", f"needs exactly one decision rule, got {decisions or 'none'}")]
        return [p for r in rule_ids for p in self.rule(r).violations(expected)]


class PolicyError(ValueError):
    pass


def load_policy(path: Path | str = POLICY_PATH) -> Policy:
    """The policy, checked against evals/data/policy.schema.json (unique rule and must_pass ids too) and every value a
    rule or invariant names against the file's own vocabulary (`fields`); PolicyError says file:line: field."""
    from evals.jsonfile import JsonFileError, load_checked

    path = Path(path)
    try:
        raw = load_checked(path, POLICY_SCHEMA, unique=[("id", ("rules",)), ("id", ("must_pass",))],
                           check=vocabulary_problems)
    except JsonFileError as exc:
        raise PolicyError(str(exc)) from exc
    return _parse_policy(raw, path)


def vocabulary_problems(raw: dict) -> list[tuple[tuple, str]]:
    """(JSON path, message) for every decision, constraint and invariant value that is not in the policy's `fields`
    (raw has passed the schema, which cannot refer to the file's own lists)."""
    vocabulary = {k: v for k, v in raw["fields"].items() if isinstance(v, list)}

    def check(name: str, value, path: tuple) -> list[tuple[tuple, str]]:
        if name not in vocabulary or value in vocabulary[name]:
            return []
        return [(path, f"{value!r} is not in the policy's vocabulary for {name} (fields.{name}: {vocabulary[name]})")]

    out = []
    for i, rule in enumerate(raw["rules"]):
        for part in ("decision", "constraint"):
            for name, value in rule.get(part, {}).items():
                if name == "recommended_platform_not":
                    for j, banned in enumerate(value):
                        out += check("recommended_platform", banned, ("rules", i, part, name, j))
                else:
                    out += check(name, value, ("rules", i, part, name))
    for i, inv in enumerate(raw.get("must_pass", ())):
        field_name = inv.get("field", "recommended_platform")
        for value in inv.get("values", {}):
            out += check(field_name, value, ("must_pass", i, "values", value))
        for j, value in enumerate(inv.get("when_expected", ())):
            out += check(field_name, value, ("must_pass", i, "when_expected", j))
    return out


def _parse_policy(raw: dict, path: Path) -> Policy:  # raw has passed the schema
    rules = tuple(
        Rule(
            id=r["id"],
            kind=r["kind"],
            text=r["text"],
            decision=r.get("decision", {}),
            constraint=r.get("constraint", {}),
            examples=tuple(r.get("examples", ())),
        )
        for r in raw["rules"]
    )
    vocabulary = {k: v for k, v in raw["fields"].items() if isinstance(v, list)}
    return Policy(
        name=raw["name"],
        version=raw["version"],
        task=raw["task"],
        vocabulary=vocabulary,
        rules=rules,
        short_system_prompt=raw["short_system_prompt"],
        source=str(path),
        must_pass=tuple(raw.get("must_pass", ())),
    )
