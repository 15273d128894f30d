"""Field-by-field scores of one prediction against its label: pure functions, no model."""

from __future__ import annotations

from evals.policy import DECISION_FIELDS

METRICS = ("json_valid", "schema_valid", *DECISION_FIELDS, "exact")
# Short column labels for the chart and the terminal.
SHORT = {"json_valid": "json", "schema_valid": "schema", "recommended_platform": "platform", "needs_review": "review"}


def score(expected: dict, got: dict | None, json_valid: bool, schema_valid: bool) -> dict:
    """{metric: bool} for json_valid, schema_valid, each decision field, and exact (all four fields right)."""
    got = got or {}
    fields = {name: name in got and got[name] == expected[name] and type(got[name]) is type(expected[name]) for name in DECISION_FIELDS}
    return {"json_valid": json_valid, "schema_valid": schema_valid, **fields, "exact": all(fields.values())}


def accuracies(cases, predictions: dict) -> dict:
    """{metric: share of cases right} for {case key (Case.key): Prediction}."""
    totals = dict.fromkeys(METRICS, 0)
    for case in cases:
        p = predictions[case.key].parsed
        for metric, ok in score(case.expected, p.obj, p.json_valid, p.schema_valid).items():
            totals[metric] += ok
    return {m: round(totals[m] / len(cases), 4) for m in METRICS}


def differing_fields(expected: dict, got: dict | None) -> list[str]:
    got = got or {}
    return [name for name in DECISION_FIELDS if got.get(name, object()) != expected[name]]


def make_record(suite: str, candidate: str, case, prediction, bias_group: str | None = None, run: str = "main") -> dict:
    """What one eval test hands the scorecard (case_id is the id as written; split and case_id identify the case) (via record_property("router_record", ...)), for one run (seed)."""
    parsed = prediction.parsed
    return {
        "suite": suite, "candidate": candidate, "run": run, "case_id": case.id, "split": case.split, "where": case.where,
        "rules": list(case.rules),
        "bias_group": bias_group,
        "expected": {k: case.expected[k] for k in DECISION_FIELDS},
        "got": {k: parsed.obj.get(k) for k in DECISION_FIELDS} if parsed.json_valid else None,
        "parse_kind": parsed.kind, "raw": prediction.raw,
        "scores": score(case.expected, parsed.obj, parsed.json_valid, parsed.schema_valid),
        "cost": {**(prediction.cost or {}), "new_tokens": prediction.new_tokens},
    }
