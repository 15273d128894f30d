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
# One set: a run publishes all of these or, where it has no loss curve, removes the old one.
SET = ("scorecard.json", "scorecard.png", "loss_curve.png", "scorecard.md")  # the markdown last
STALE_MARK = "> **Stale:**"
PARTIAL_MARK = "> **Partial run:**"


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
        self.deselected = 0
        self.gate_failed = False
        self.notes: list[str] = []

    def pytest_deselected(self, items) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and ("dataset" in report.keywords or "[dataset-invalid" in report.nodeid):
            self.gate_failed = True
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
        if self.gate_failed:
            self.reports_dir = reports_dir(self.config)
            self.mark_stale()
            return
        if not self.records and self.gate is None:
            return
        from reports.render_markdown import render_markdown
        from reports.render_png import render_png
        from reports.summary import merge_facts, summarize

        self.reports_dir = reports_dir(self.config)  # resolved now: Settings is stashed by another plugin's pytest_configure
        records = [r for rs in self.records.values() for r in rs]
        facts = merge_facts(f for fs in self.facts.values() for f in fs)
        files: dict[str, bytes] = {}
        first = next(iter((facts.get("adapters") or {}).values()), {})
        curve = Path(first.get("loss_curve") or "")
        if curve.is_file():  # next to the markdown, so the link works wherever the report is read (first seed's)
            files["loss_curve.png"] = curve.read_bytes()
            facts["loss_curve"] = str(self.reports_dir / "loss_curve.png")
        self.summary = summarize(records, facts, self.gate)
        filters = run_filters(self.config, self.deselected)
        md = render_markdown(self.summary, md_dir=self.reports_dir)
        if filters:
            self.summary["partial_run"] = {"filters": filters}
            md = f"{PARTIAL_MARK} filtered by {'; '.join(filters)}. These numbers cover only what ran; they are not the full suite's.\n\n" + md
        files["scorecard.json"] = json.dumps(self.summary, indent=2, sort_keys=True, default=str).encode()
        files["scorecard.png"] = render_png(self.summary)
        files["scorecard.md"] = md.encode()
        publish_set(self.reports_dir, files)
        self.written = self.reports_dir / "scorecard.md"
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(md)

    def mark_stale(self) -> None:
        """The dataset gate failed: the scorecard on disk describes older data; say so at its top (md and json)."""
        md, js = self.reports_dir / "scorecard.md", self.reports_dir / "scorecard.json"
        if not md.is_file() and not js.is_file():
            return
        reason = "the dataset gate failed in a later run, so nothing was scored; these numbers come from earlier data"
        if md.is_file():
            text = md.read_text(encoding="utf-8")
            if not text.startswith(STALE_MARK):
                write_atomic(md, f"{STALE_MARK} {reason}. Fix the data and rerun.\n\n{text}".encode())
        if js.is_file():
            try:
                summary = json.loads(js.read_text(encoding="utf-8"))
            except ValueError:
                summary = None
            if isinstance(summary, dict):
                summary["stale"] = reason
                write_atomic(js, json.dumps(summary, indent=2, sort_keys=True, default=str).encode())
            else:
                js.unlink()
        self.notes.append(f"scorecard: {shown(md, self.config)} marked stale ({reason})")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.summary is None:
            for line in self.notes:
                terminalreporter.write_line(line)
            return
        from reports.render_text import render_text

        terminalreporter.write_sep("-", "router scorecard")
        partial = self.summary.get("partial_run")
        head = [f"partial run, filtered by {'; '.join(partial['filters'])}"] if partial else []
        for line in [*head, *render_text(self.summary), *self.notes]:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"scorecard: {shown(self.written, terminalreporter.config)}")


def shown(path: Path, config: pytest.Config) -> str:
    """The path relative to where pytest was started when it is below it, else absolute."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def run_filters(config: pytest.Config, deselected: int) -> list[str]:
    """What narrowed this run: -k, -m, --deselect, node ids, --cases, deselected items. Empty for a full run."""
    opt = config.option
    out = []
    if getattr(opt, "keyword", ""):
        out.append(f"-k {opt.keyword!r}")
    if getattr(opt, "markexpr", ""):
        out.append(f"-m {opt.markexpr!r}")
    if getattr(opt, "deselect", None):
        out.append("--deselect " + " ".join(opt.deselect))
    node_ids = [a for a in config.args if "::" in a]
    if node_ids:
        out.append("node ids " + " ".join(node_ids))
    cases = getattr(opt, "router_cases", None)
    if cases:
        out.append(f"--cases {cases}")
    if deselected:
        out.append(f"{deselected} test(s) deselected")
    return out


def publish_set(folder: Path, files: dict[str, bytes]) -> None:
    """Replace the scorecard set as a whole: remove every old member first, then write the new ones, markdown last.

    A run killed midway leaves some new files and no old ones, never a new json beside an old md and png.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in SET:
        (folder / name).unlink(missing_ok=True)
    for name in SET:
        if name in files:
            write_atomic(folder / name, files[name])
