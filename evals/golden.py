"""Golden snapshots: one readable JSON file per base model and candidate, under <golden dir>/<base model>@<runtime>/.

The runtime (cpu-fp32, cuda-nf4-bf16) is part of the folder name: 4-bit and fp32 greedy decoding differ."""

from __future__ import annotations

from pathlib import Path

from syrupy.extensions.json import JSONSnapshotExtension

from evals.policy import DECISION_FIELDS


def golden_key(base_model: str, runtime_label: str) -> str:
    return f"{base_model.replace('/', '__')}@{runtime_label}"


def golden_extension(folder: Path) -> type[JSONSnapshotExtension]:
    class GoldenJSON(JSONSnapshotExtension):
        @classmethod
        def dirname(cls, *, test_location) -> str:
            return str(folder)

    return GoldenJSON


def pinned_decisions(cases, predictions: dict) -> dict:
    """{case id: the four decision fields and the parse outcome}; the free-text reason is left out."""
    out = {}
    for case in sorted(cases, key=lambda c: c.id):
        p = predictions[case.id]
        got = p.parsed.obj or {}
        out[case.id] = {"parse": p.parsed.kind, **{f: got.get(f) for f in DECISION_FIELDS}}
    return out
