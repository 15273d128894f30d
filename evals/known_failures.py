"""Cases a candidate is known to get wrong, per base model and runtime: run as strict expected failures.

They live in <golden dir>/expected_failures.json as {base model@runtime: {candidate: {case id: what goes wrong}}}."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.atomic import write_json_atomic

FILENAME = "expected_failures.json"


def read_table(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def expect_failure(request, candidate: str, case_id: str) -> None:
    """Mark this eval a strict expected failure when the expected failures list it."""
    if request.getfixturevalue("router_settings").update_known_failures:
        return
    reason = request.getfixturevalue("expected_failures").get(candidate, {}).get(case_id)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"{FILENAME}: {reason}"))


def describe(record: dict) -> str:
    got = record.get("got") or {}
    wrong = [f for f in record["expected"] if got.get(f) != record["expected"][f]]
    if record["parse_kind"] != "ok":
        wrong.insert(0, f"output {record['parse_kind']}")
    if not wrong:
        return "right answer, but it moved against the source case's output"
    return "; ".join(f"{f}: {got.get(f)!r} for {record['expected'][f]!r}" if f in record["expected"] else f for f in wrong)


class KnownFailures:
    """Controller-side, like the scorecard. With --update-known-failures: collect every failing eval (via its
    router_record) and rewrite this run's entry at the end. Otherwise: say so when this run's base model@runtime
    has no entry, since every miss then fails instead of being expected."""

    def __init__(self, path: Path, update: bool):
        self.path, self.update = path, update
        self.failures: dict[str, dict[str, str]] = {}
        self.facts: dict = {}

    def key(self) -> str | None:
        from evals.golden import golden_key

        return golden_key(self.facts["base_model"], self.facts["device"]) if self.facts.get("base_model") else None

    def pytest_runtest_logreport(self, report) -> None:
        props = dict(report.user_properties)
        self.facts = props.get("router_run") or self.facts
        record = props.get("router_record")
        if record and report.when == "call" and report.failed:
            self.failures.setdefault(record["candidate"], {})[record["case_id"]] = describe(record)

    def pytest_sessionfinish(self, session) -> None:
        if not self.update or self.key() is None:
            return
        table = read_table(self.path)
        table[self.key()] = {c: dict(sorted(cases.items())) for c, cases in sorted(self.failures.items())}
        write_json_atomic(self.path, table, sort_keys=True)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        key = self.key()
        if self.update and key:
            n = sum(map(len, self.failures.values()))
            terminalreporter.write_line(f"expected failures: {n} recorded for {key} in {self.path}")
        elif key and self.failures and key not in read_table(self.path):
            terminalreporter.write_line(
                f"expected failures: {self.path} has no entry for {key}, so every miss fails; "
                "record this model and runtime's misses with --update-known-failures"
            )


@pytest.hookimpl(trylast=True)  # after fixtures.options has stashed the settings
def pytest_configure(config) -> None:
    if hasattr(config, "workerinput"):
        return
    from fixtures.options import SETTINGS

    settings = config.stash.get(SETTINGS, None)
    if settings is not None:
        config.pluginmanager.register(KnownFailures(settings.golden_dir / FILENAME, settings.update_known_failures),
                                      "router-known-failures")
