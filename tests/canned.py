"""Predictions made from recorded decisions, for driving the evals without a model."""

from fixtures.parse import Parsed
from fixtures.predictions import Prediction


def prediction_from(candidate: str, case_id: str, decision: dict, identity: str) -> Prediction:
    fields = {k: v for k, v in decision.items() if k != "parse"}
    obj = {**fields, "reason": "canned"} if decision["parse"] == "ok" else None
    return Prediction(candidate, case_id, "canned", Parsed(decision["parse"], obj), True, 1, identity)
