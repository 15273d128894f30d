"""Which golden folder applies: <golden dir>/<base model>@<runtime>/ (the record lives in evals/expectations.py).

The runtime (cpu-bf16, cpu-fp32, cuda-nf4-bf16) is part of the name: greedy decoding differs between precisions. A
runtime with no record of its own is judged against the nearest record of the same base model in RECORD_ORDER, as
drift (its predictions' identities name another runtime, so nothing is strict): the merge gate decides."""

from __future__ import annotations

from dataclasses import dataclass

# Runtimes from nearest to farthest: a runtime without a record of its own takes the nearest recorded one in this
# list (ties: the earlier); a runtime not in the list takes the first recorded one.
RECORD_ORDER = ("cpu-fp32", "cpu-bf16", "cuda-nf4-bf16")


def golden_key(base_model: str, runtime_label: str) -> str:
    return f"{base_model.replace('/', '__')}@{runtime_label}"


@dataclass(frozen=True)
class RecordChoice:
    own: str  # this run's base model@runtime
    used: str | None  # the record it is judged against: own, the nearest other runtime's, or None (no record at all)

    @property
    def fallback(self) -> bool:
        return self.used is not None and self.used != self.own

    def line(self, command: str) -> str:
        """One line for the run header, the scorecard and the PR comment."""
        if self.used is None:
            return (f"record: none for this base model ({self.own}); every candidate is scored, nothing is judged: "
                    f"record one with `{command}`")
        if not self.fallback:
            return f"record: {self.used}"
        return (f"record: {self.used}, judged as drift (no record for {self.own}; record one on this machine with "
                f"`{command}`)")


def nearest_order(runtime_label: str) -> list[str]:
    """Every runtime in RECORD_ORDER but this one, nearest first."""
    if runtime_label not in RECORD_ORDER:
        return list(RECORD_ORDER)
    here = RECORD_ORDER.index(runtime_label)
    return sorted((r for r in RECORD_ORDER if r != runtime_label), key=lambda r: (abs(RECORD_ORDER.index(r) - here),
                                                                                  RECORD_ORDER.index(r)))


def choose_record(recorded: list[str], own: str) -> RecordChoice:
    """This run's own record (own: base model@runtime) where there is one, else the nearest recorded runtime of the
    same base model."""
    if own in recorded:
        return RecordChoice(own, own)
    base, _, runtime_label = own.rpartition("@")
    for runtime in nearest_order(runtime_label):
        if f"{base}@{runtime}" in recorded:
            return RecordChoice(own, f"{base}@{runtime}")
    return RecordChoice(own, None)

