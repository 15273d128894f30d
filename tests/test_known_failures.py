"""The known-failures plugin: record misses with --update-known-failures, then run them as strict xfails."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
KEY = "tiny@cpu-fp32"


@pytest.fixture
def project(pytester):
    """Two evals that report like test_policy does; case b gets the platform wrong."""
    pytester.makeini(f"[pytest]\npythonpath = {ROOT}\n")
    pytester.makeconftest('''
import pytest

pytest_plugins = ["fixtures.options", "fixtures.plugin", "evals.known_failures"]


@pytest.fixture(scope="session")
def golden_id():
    return "tiny@cpu-fp32"
''')
    write_evals(pytester, b_platform="Databricks app")
    return pytester


def write_evals(pytester, b_platform):
    pytester.makepyfile(test_evals=f'''
import pytest

from evals.known_failures import expect_failure

GOT = {{"a": "Glean", "b": {b_platform!r}}}


@pytest.mark.parametrize("case_id", ["a", "b"])
def test_eval(case_id, request, record_property):
    record_property("router_run", {{"base_model": "tiny", "device": "cpu-fp32"}})
    record_property("router_record", {{"candidate": "fine-tuned", "case_id": case_id, "parse_kind": "ok",
                                       "expected": {{"recommended_platform": "Glean"}},
                                       "got": {{"recommended_platform": GOT[case_id]}}}})
    expect_failure(request, "fine-tuned", case_id)
    assert GOT[case_id] == "Glean"
''')


def table(pytester) -> dict:
    return json.loads((pytester.path / "golden" / "expected_failures.json").read_text())


def test_without_an_entry_every_miss_fails_and_the_summary_says_how_to_record(project):
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*has no entry for {KEY}, so every miss fails*--update-known-failures*"])
    assert not (project.path / "golden" / "expected_failures.json").exists()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_update_records_misses_then_they_run_as_strict_xfails(project, workers):
    project.runpytest("--update-known-failures", *workers).assert_outcomes(passed=1, failed=1)
    assert table(project) == {KEY: {"fine-tuned": {"b": "recommended_platform: 'Databricks app' for 'Glean'"}}}

    result = project.runpytest(*workers)
    result.assert_outcomes(passed=1, xfailed=1)
    assert "has no entry" not in result.stdout.str()

    write_evals(project, b_platform="Glean")  # the data fix lands: the expectation must go
    result = project.runpytest(*workers)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*expected_failures.json: recommended_platform*"])


def test_update_keeps_other_entries(project):
    (project.path / "golden").mkdir()
    (project.path / "golden" / "expected_failures.json").write_text(json.dumps({"other@cuda-nf4-bf16": {"base": {"x": "y"}}}))
    project.runpytest("--update-known-failures")
    assert set(table(project)) == {"other@cuda-nf4-bf16", KEY}
