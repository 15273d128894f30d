"""The scorecard plugin end to end: a fake eval module records properties; the run writes reports/scorecard.*.

Every run is checked with and without xdist (records then travel from the workers in report.user_properties).
Needs pytester: run with `pytest -p pytester` or list "pytester" in the root conftest's pytest_plugins.
Runs are subprocesses: an in-process run would import matplotlib's submodules afresh each time
(pytester drops what a run imported), and numpy refuses a second import in one process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import reports

REPO = Path(reports.__file__).resolve().parent.parent

FAKE_EVALS = '''
import pytest

EXPECTED = {"tier": "Trusted Technical Builder", "risk": "high",
            "recommended_platform": "Databricks app + Salesforce integration", "needs_review": True}
CANDIDATES = ["base", "few-shot", "fine-tuned"]
RIGHT = {"base": 3, "few-shot": 6, "fine-tuned": 9}  # of 10 test cases, the first k are right


def record(candidate, case_id, right, suite="policy", split="test", bias_group=None):
    got = dict(EXPECTED) if right else {**EXPECTED, "risk": "low"}
    fields = {f: got[f] == EXPECTED[f] for f in EXPECTED}
    return {"suite": suite, "candidate": candidate, "case_id": case_id, "split": split,
            "rules": ["custom-build"] if int(case_id[1:]) % 2 else ["custom-build", "bias-writeback-no-crm"],
            "bias_group": bias_group, "expected": EXPECTED, "got": got, "parse_kind": "ok", "raw": "{...}",
            "scores": {"json_valid": True, "schema_valid": True, **fields, "exact": all(fields.values())}}


def facts(candidate):
    out = {"base_model": "smollm2-135m-instruct", "base_identity": "gguf-sha256:feedface", "device": "cpu-fp32",
           "phases": {"load_model_s": 2.0, "predict_s": 5.0}}
    if candidate == "fine-tuned":  # facts that only some tests know: merged across tests, one level deep
        out["phases"] = {"load_model_s": 2.0, "predict_s": 5.0, "train_s": 300.0}
        out["adapters"] = {"0": {"key": "0123456789abcdef0123", "trained_now": False, "wall_time_s": 312.5,
                                 "trainable_params": 4884480, "total_params": 139399488,
                                 "final_train_loss": 0.12, "final_val_loss": 0.15, "weights": "sha256:00112233445566778899"}}
    return out


@pytest.mark.parametrize("candidate", CANDIDATES)
@pytest.mark.parametrize("i", range(10))
def test_policy(candidate, i, record_property):
    rec = record(candidate, f"c{i:02d}", i < RIGHT[candidate])
    record_property("router_record", rec)
    record_property("router_run", facts(candidate))
    if candidate == "fine-tuned":
        assert rec["scores"]["exact"], "fine-tuned is asserted field by field"


@pytest.mark.parametrize("candidate", CANDIDATES)
@pytest.mark.parametrize("group", ["swap-names", "injection"])
def test_bias(candidate, group, record_property):
    right = candidate != "base" or group == "injection"
    record_property("router_record", record(candidate, "b01", right, suite="bias", split="bias", bias_group=group))


def test_without_records():
    pass
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A tmp project that loads the plugin; pythonpath lets xdist workers import it too."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makeini(f"[pytest]\npythonpath = {REPO}\n")
    pytester.makeconftest('pytest_plugins = ["reports.plugin"]')
    return pytester


XDIST = pytest.mark.parametrize("xdist", [(), ("-p", "xdist", "-n", "2")], ids=["serial", "xdist"])


@XDIST
def test_run_writes_md_json_png(project, xdist):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    result = project.runpytest_subprocess(*xdist)
    result.assert_outcomes(passed=36, failed=1)
    if xdist:
        result.stdout.fnmatch_lines(["*2 workers*"])
    out = project.path / "reports"
    assert sorted(p.name for p in out.iterdir()) == ["scorecard.json", "scorecard.md", "scorecard.png"]
    assert (out / "scorecard.png").read_bytes()[:4] == b"\x89PNG"

    summary = json.loads((out / "scorecard.json").read_text())
    exact = {c: (t["exact"]["k"], t["exact"]["n"]) for c, t in summary["accuracy"]["test"].items()}
    assert exact == {"base": (3, 10), "few-shot": (6, 10), "fine-tuned": (9, 10)}
    assert summary["bias"]["swap-names"]["base"] == {"k": 0, "n": 1}
    assert summary["run"]["adapters"]["0"]["trainable_params"] == 4884480
    assert summary["run"]["phases"] == {"load_model_s": 2.0, "predict_s": 5.0, "train_s": 300.0}

    md = (out / "scorecard.md").read_text()
    assert "fine-tuned vs base: 9/10 vs 3/10 exact; 6 cases only fine-tuned got right, 0 only base; p = 0.0312 (significant at 0.05)" in md
    assert "| c09 " in md  # fine-tuned's one failing case, listed in full
    assert "| cached " in md
    assert "The gate did not run" in md
    result.stdout.re_match_lines([
        r".*router scorecard.*",
        r"base +\[test\] exact 3/10 \(30\.0%\) \| json 100\.0% .*",
        r"few-shot +\[test\] exact 6/10 .*",
        r"fine-tuned \[test\] exact 9/10 \(90\.0%\) .*",
        r"fine-tuned vs base \[test\]: \+6/-0 cases, p = 0\.0312 \(significant\)",
    ])
    result.stdout.fnmatch_lines(["scorecard: reports?scorecard.md"])


def test_same_scorecard_with_and_without_xdist(project):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    out = project.path / "reports"
    project.runpytest_subprocess().assert_outcomes(passed=36, failed=1)
    serial = {name: (out / name).read_text() for name in ("scorecard.json", "scorecard.md")}
    project.runpytest_subprocess("-p", "xdist", "-n", "2").assert_outcomes(passed=36, failed=1)
    assert {name: (out / name).read_text() for name in serial} == serial


@XDIST
def test_run_without_records_writes_nothing(project, xdist):
    project.makepyfile("def test_plain():\n    assert True\n")
    result = project.runpytest_subprocess(*xdist)
    result.assert_outcomes(passed=1)
    assert not (project.path / "reports").exists()
    result.stdout.no_fnmatch_line("*scorecard*")


def test_collect_only_writes_nothing(project):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    assert project.runpytest_subprocess("--collect-only", "-q").ret == 0
    assert not (project.path / "reports").exists()


@XDIST
def test_markdown_appended_to_github_step_summary(project, monkeypatch, xdist):
    step_summary = project.path / "step_summary.md"
    step_summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    project.runpytest_subprocess(*xdist).assert_outcomes(passed=36, failed=1)
    text = step_summary.read_text()
    assert text.startswith("# earlier step\n")
    assert text.endswith((project.path / "reports" / "scorecard.md").read_text())


def test_reports_dir_comes_from_settings_when_the_options_plugin_is_loaded(project):
    project.makeconftest(
        """
import dataclasses

import pytest

from fixtures.options import SETTINGS

pytest_plugins = ["fixtures.options", "reports.plugin"]


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.stash[SETTINGS] = dataclasses.replace(config.stash[SETTINGS], reports_dir=config.rootpath / "out" / "cards")
"""
    )
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    result = project.runpytest_subprocess()
    result.assert_outcomes(passed=36, failed=1)
    assert sorted(p.name for p in (project.path / "out" / "cards").iterdir()) == ["scorecard.json", "scorecard.md", "scorecard.png"]
    assert not (project.path / "reports").exists()
    result.stdout.fnmatch_lines(["scorecard: out?cards?scorecard.md"])
