"""Scorecard plugin: collects `router_record` / `router_run` properties and writes reports/scorecard.{md,json,png}.

Modelled on pytest's junitxml: one plugin object, registered in pytest_configure on the controller only
(xdist workers ship their user_properties back in each report), collecting in pytest_runtest_logreport,
writing in pytest_sessionfinish and printing in pytest_terminal_summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fixtures.atomic import write_atomic

RECORD = "router_record"
RUN = "router_run"
GATE = "router_gate"
SCORECARD = pytest.StashKey["ScorecardPlugin"]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller writes the scorecard
        return
    plugin = ScorecardPlugin(config)
    config.stash[SCORECARD] = plugin
    config.pluginmanager.register(plugin, "router-scorecard")


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(SCORECARD, None)
    if plugin is not None:
        del config.stash[SCORECARD]
        config.pluginmanager.unregister(plugin)


def reports_dir(config: pytest.Config) -> Path:
    from fixtures.options import SETTINGS

    settings = config.stash.get(SETTINGS, None)
    return Path(settings.reports_dir) if settings is not None else Path(config.rootpath) / "reports"


class ScorecardPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: dict[str, list[dict]] = {}  # nodeid -> its router_record values, latest phase wins
        self.facts: dict[str, list[dict]] = {}  # nodeid -> its router_run values, in arrival order
        self.gate: dict | None = None  # the merge gate's verdict (evals/test_gate.py)
        self.reports_dir: Path | None = None
        self.summary: dict | None = None
        self.written: Path | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Every phase carries the test's user_properties so far; a later phase sees a superset.
        gate = [value for name, value in report.user_properties if name == GATE]
        if gate:
            self.gate = gate[-1]
        records = [value for name, value in report.user_properties if name == RECORD]
        facts = [value for name, value in report.user_properties if name == RUN]
        if records:
            self.records[report.nodeid] = records
        if facts:
            self.facts.pop(report.nodeid, None)  # re-insert: the latest report's facts win the merge
            self.facts[report.nodeid] = facts

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.records and self.gate is None:
            return
        from reports.scorecard import (
            merge_facts,
            render_markdown,
            render_png,
            summarize,
        )

        self.reports_dir = reports_dir(self.config)  # resolved now: Settings is stashed by another plugin's pytest_configure
        records = [r for rs in self.records.values() for r in rs]
        facts = merge_facts(f for fs in self.facts.values() for f in fs)
        first = next(iter((facts.get("adapters") or {}).values()), {})
        curve = Path(first.get("loss_curve") or "")
        if curve.is_file():  # next to the markdown, so the link works wherever the report is read (first seed's)
            write_atomic(self.reports_dir / "loss_curve.png", curve.read_bytes())
            facts["loss_curve"] = str(self.reports_dir / "loss_curve.png")
        self.summary = summarize(records, facts, self.gate)
        md = render_markdown(self.summary, md_dir=self.reports_dir)
        write_atomic(self.reports_dir / "scorecard.json", json.dumps(self.summary, indent=2, sort_keys=True, default=str).encode())
        write_atomic(self.reports_dir / "scorecard.png", render_png(self.summary))
        write_atomic(self.reports_dir / "scorecard.md", md.encode())
        self.written = self.reports_dir / "scorecard.md"
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(md)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.summary is None:
            return
        from reports.scorecard import render_text

        terminalreporter.write_sep("-", "router scorecard")
        for line in render_text(self.summary):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"scorecard: {shown(self.written, terminalreporter.config)}")


def shown(path: Path, config: pytest.Config) -> str:
    """The path relative to where pytest was started when it is below it, else absolute."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)
