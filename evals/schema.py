"""The output contract: a JSON Schema built from the policy's vocabulary."""

from __future__ import annotations

from functools import lru_cache

from evals.policy import OUTPUT_FIELDS, Policy


def output_schema(policy: Policy) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{policy.name} decision",
        "type": "object",
        "additionalProperties": False,
        "required": list(OUTPUT_FIELDS),
        "properties": {
            **{name: {"enum": list(values)} for name, values in policy.vocabulary.items()},
            "needs_review": {"type": "boolean"},
            "reason": {"type": "string", "minLength": 1, "pattern": r"\S"},
        },
    }


@lru_cache(maxsize=8)
def _validator(policy: Policy):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(output_schema(policy))


def schema_errors(policy: Policy, obj: object) -> list[tuple[str, str, str]]:
    """(field, validator, message) for each way `obj` breaks the contract, in a stable order."""
    errors = sorted(_validator(policy).iter_errors(obj), key=lambda e: (list(e.path), e.validator))
    out = []
    for e in errors:
        if e.validator == "additionalProperties":
            extra = sorted(set(obj) - set(OUTPUT_FIELDS)) if isinstance(obj, dict) else []
            out.append((",".join(extra) or "<root>", e.validator, e.message))
        elif e.validator == "required":
            out.append((e.message.split("'")[1] if "'" in e.message else "<root>", e.validator, e.message))
        else:
            out.append((".".join(str(p) for p in e.path) or "<root>", e.validator, e.message))
    return out
