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
    """The policy, checked against evals/data/policy.schema.json (unique rule ids too); PolicyError says file:line: field."""
    from evals.jsonfile import JsonFileError, load_checked

    path = Path(path)
    try:
        return _parse_policy(load_checked(path, POLICY_SCHEMA, unique={"id": ("rules",)}), path)
    except JsonFileError as exc:
        raise PolicyError(str(exc)) from exc


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
