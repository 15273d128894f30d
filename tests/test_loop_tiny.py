"""The whole loop through the real plugins on a tiny local model: train once, reuse, predict, score, report."""

import json
import re
from pathlib import Path

import pytest

from fixtures.candidates import candidate_names

ROOT = Path(__file__).parent.parent


@pytest.fixture
def suite(pytester, tiny_model_dir, splits):
    """A checkout running the suite's policy evals against the tiny model, on five cases."""
    cases = pytester.path / "five.jsonl"
    cases.write_text("".join(
        json.dumps({"id": c.id, "request": c.request, "expected": c.expected}) + "\n"
        for c in sorted(splits["test"], key=lambda c: c.id)[:5]
    ))
    pytester.makeini(f"""
        [pytest]
        pythonpath = {ROOT}
        router_data_dir = {ROOT / "evals" / "data"}
        router_max_new_tokens = 16
        markers =
            policy: evals
    """)
    pytester.makeconftest('pytest_plugins = ["fixtures.options", "fixtures.plugin", "reports.plugin"]')
    pytester.makepyfile(test_evals="from evals.test_policy import *  # noqa: F401,F403")
    args = ["-m", "policy", "--base-model", str(tiny_model_dir), "--cache-dir", str(pytester.path / "cache"),
            "--cases", str(cases), "-p", "no:randomly"]
    return pytester, args


def outcome(result) -> dict:
    return {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}


def trainings(pytester) -> int:
    history = pytester.path / "cache" / "adapters" / "history.jsonl"
    return len(history.read_text().splitlines()) if history.exists() else 0


@pytest.mark.slow
def test_trains_once_then_reuses_and_writes_the_scorecard(suite):
    pytester, args = suite
    first = pytester.runpytest_subprocess(*args)
    assert trainings(pytester) == 1
    assert "trained in" in first.stdout.str()
    outcomes = outcome(first)
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == len(candidate_names()) * 5  # every candidate x 5 cases
    scorecard = json.loads((pytester.path / "reports" / "scorecard.json").read_text())
    assert scorecard  # written by the controller
    assert "trained now" in (pytester.path / "reports" / "scorecard.md").read_text()

    second = pytester.runpytest_subprocess(*args)
    assert trainings(pytester) == 1
    assert "cached at" in second.stdout.str() and "predict " not in second.stdout.str()
    assert "| cached " in (pytester.path / "reports" / "scorecard.md").read_text()
    assert outcome(second) == outcomes


@pytest.mark.slow
def test_under_xdist_one_worker_trains_and_the_outcome_is_the_same(suite):
    pytester, args = suite
    serial = pytester.runpytest_subprocess(*args)
    parallel = pytester.runpytest_subprocess(*args, "-n", "2", "--retrain")
    assert trainings(pytester) == 2  # the serial run's, then exactly one under -n 2 --retrain
    assert re.search(r"^\[router\] \[gw[01]\] trained in", parallel.stdout.str(), re.M)  # a worker's progress, printed by the controller
    assert outcome(parallel) == outcome(serial)


def test_no_train_fails_clearly_when_nothing_is_cached(suite):
    pytester, args = suite
    result = pytester.runpytest_subprocess(*args, "--no-train", "-k", "fine-tuned")
    result.stdout.fnmatch_lines(["*no cached adapter for key * and --no-train was given*"])
