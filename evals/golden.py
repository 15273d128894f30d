"""Which golden folder applies: <golden dir>/<base model>@<runtime>/ (the record lives in evals/expectations.py).

The runtime (cpu-bf16, cpu-fp32, cuda-nf4-bf16) is part of the name: greedy decoding differs between precisions."""

from __future__ import annotations


def golden_key(base_model: str, runtime_label: str) -> str:
    return f"{base_model.replace('/', '__')}@{runtime_label}"
