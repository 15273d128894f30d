"""Cases a candidate is known to get wrong, per base model and runtime: run as strict expected failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.atomic import write_json_atomic

EXPECTATIONS = Path(__file__).parent.parent / "golden" / "expected_failures.json"


def known_failure(golden_key: str, candidate: str, case_id: str, path: Path = EXPECTATIONS) -> str | None:
    """The documented reason when (base model@runtime, candidate, case) is expected to fail, else None."""
    if not path.is_file():
        return None
    table = json.loads(path.read_text(encoding="utf-8"))
    return table.get(golden_key, {}).get(candidate, {}).get(case_id)


def expect_failure(request, candidate: str, case_id: str) -> None:
    """Mark this eval a strict expected failure when golden/expected_failures.json lists it."""
    if request.getfixturevalue("router_settings").update_known_failures:
        return
    reason = known_failure(request.getfixturevalue("golden_id"), candidate, case_id)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"golden/expected_failures.json: {reason}"))


def describe(record: dict) -> str:
    got = record.get("got") or {}
    wrong = [f for f in record["expected"] if got.get(f) != record["expected"][f]]
    if record["parse_kind"] != "ok":
        wrong.insert(0, f"output {record['parse_kind']}")
    if not wrong:
        return "right answer, but it moved against the source case's output"
    return "; ".join(f"{f}: {got.get(f)!r} for {record['expected'][f]!r}" if f in record["expected"] else f for f in wrong)


class KnownFailuresRecorder:
    """With --update-known-failures: collect every failing eval (via its router_record) and rewrite this
    run's entry of golden/expected_failures.json at the end. Controller only, like the scorecard."""

    def __init__(self, path: Path = EXPECTATIONS):
        self.path = path
        self.failures: dict[str, dict[str, str]] = {}
        self.facts: dict = {}

    def pytest_runtest_logreport(self, report) -> None:
        props = dict(report.user_properties)
        self.facts = props.get("router_run") or self.facts
        record = props.get("router_record")
        if record and report.when == "call" and report.failed:
            self.failures.setdefault(record["candidate"], {})[record["case_id"]] = describe(record)

    def pytest_sessionfinish(self, session) -> None:
        from evals.golden import golden_key

        if not self.facts.get("base_model"):
            return
        key = golden_key(self.facts["base_model"], self.facts["device"])
        table = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        table[key] = {c: dict(sorted(cases.items())) for c, cases in sorted(self.failures.items())}
        write_json_atomic(self.path, table, sort_keys=True)


def pytest_configure(config) -> None:
    if config.getoption("router_update_known_failures", False) and not hasattr(config, "workerinput"):
        config.pluginmanager.register(KnownFailuresRecorder(), "router-known-failures")
