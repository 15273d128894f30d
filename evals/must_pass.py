"""Must-pass invariants: data in policy.json ("must_pass"), judged here as pure functions of a case and a decision.

Three kinds, each named by the policy file's `kind`:
- "forbid-unless-named": `field` must not take any value in `values` unless the request names one of that value's
  terms (whole words, any case). The notes' bias: no Salesforce or ServiceNow integration on a request that names
  neither.
- "match-label": on cases whose label's `field` is one of `when_expected`, the decision's `field` equals the label.
  An integration when one is named.
- "same-as-source": on bias cases of the groups in `bias_groups` (metamorphic rewrites that must not change the
  answer), every decision field equals the source case's decision in the same run. Injected text never changes
  the decision.

Each kind's keys are fixed by evals/data/policy.schema.json ($defs per kind, no other key allowed) and every value
they name is checked against the policy's vocabulary when the policy loads (evals/policy.py load_policy), so a
misspelled key or kind fails there, with file:line: field, not when the gate runs.
"""

from __future__ import annotations

import re
import dataclasses
from dataclasses import dataclass

from evals.policy import DECISION_FIELDS

KINDS = ("forbid-unless-named", "match-label", "same-as-source")


@dataclass(frozen=True)
class Invariant:
    id: str
    kind: str
    text: str
    field: str = "recommended_platform"
    values: dict = dataclasses.field(default_factory=dict)  # forbid-unless-named: value -> terms that license it
    when_expected: tuple[str, ...] = ()  # match-label
    bias_groups: tuple[str, ...] = ()  # same-as-source

    def applies(self, case, group: str | None) -> bool:
        if self.kind == "same-as-source":
            return group in self.bias_groups
        if self.kind == "match-label":
            return case.expected.get(self.field) in self.when_expected
        return True

    def holds(self, case, decision: dict | None, source_decision: dict | None = None) -> bool:
        """Whether one run's decision keeps the invariant on this case (a decision that is not JSON breaks it)."""
        if decision is None or decision.get("parse") in UNPARSED:
            return False
        if self.kind == "forbid-unless-named":
            value = decision.get(self.field)
            terms = self.values.get(value)
            return terms is None or names_any(case.request, terms)
        if self.kind == "match-label":
            return decision.get(self.field) == case.expected.get(self.field)
        if source_decision is None:
            return False
        return all(decision.get(f) == source_decision.get(f) for f in DECISION_FIELDS)


UNPARSED = ("no_json", "truncated", "invalid_json")


def names_any(text: str, terms) -> bool:
    return any(re.search(rf"(?<![a-z0-9]){re.escape(t.lower())}(?![a-z0-9])", text.lower()) for t in terms)


def invariants(policy) -> tuple[Invariant, ...]:
    """The policy's must-pass invariants (policy.json "must_pass", already checked by load_policy; checked again here
    for a Policy built in code), with errors naming the entry."""
    out = []
    for i, raw in enumerate(policy.must_pass):
        where = f"{policy.source}: must_pass[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise ValueError(f"{where}: needs an object with a string 'id'")
        if raw.get("kind") not in KINDS:
            raise ValueError(f"{where} ({raw['id']}): field 'kind' must be one of {KINDS}, got {raw.get('kind')!r}")
        out.append(Invariant(
            id=raw["id"], kind=raw["kind"], text=raw.get("text", ""), field=raw.get("field", "recommended_platform"),
            values={k: tuple(v) for k, v in raw.get("values", {}).items()},
            when_expected=tuple(raw.get("when_expected", ())), bias_groups=tuple(raw.get("bias_groups", ())),
        ))
    ids = [inv.id for inv in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{policy.source}: must_pass ids must be unique, got {ids}")
    return tuple(out)
