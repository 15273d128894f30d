"""The record (evals/expectations.py) and the merge gate (evals/test_gate.py) driven by pytester with canned answers:
re-recording, strict mode on unchanged weights, drift on new weights, another runtime, refused filtered re-records."""

import json
from pathlib import Path

import matplotlib.pyplot  # noqa: F401  imported before pytester's runs: numpy refuses a second import in one process
import pytest

from fixtures.candidates import read_registry

ROOT = Path(__file__).parent.parent
GOLDEN_ID = "tiny@cpu-fp32"
GLEAN = {"tier": "Trusted Functional Builder", "risk": "low", "recommended_platform": "Glean", "needs_review": False}
CASES = [f"t{i:02d}" for i in range(12)]
# The shipped registry's candidates: those on the trained adapter answer per seed, the others with one run.
TRAINED = [e["name"] for e in read_registry() if e.get("adapter") == "trained"]
PROMPT_ONLY = [e["name"] for e in read_registry() if e.get("adapter", "none") == "none"]
N = len(TRAINED) + len(PROMPT_ONLY)  # one snapshot test each, beside the one gate test

CONFTEST = '''
import json
from pathlib import Path

import pytest

from tests.canned import prediction_from

pytest_plugins = ["fixtures.options", "fixtures.plugin", "reports.plugin", "evals.expectations"]


@pytest.fixture(scope="session")
def golden_id():
    return "tiny@cpu-fp32"


def answers():
    return json.loads((Path(__file__).parent / "answers.json").read_text())


@pytest.fixture
def predict_runs():
    def run(name, cases):
        runs = answers()[name]
        return {label: {c.key: prediction_from(name, c.key, run["decisions"][c.id], run["identity"]) for c in cases}
                for label, run in runs.items()}
    return run


class FakePredictor:
    @property
    def adapters(self):
        return {name: {label: {"weights": run["identity"]} for label, run in runs.items()} for name, runs in answers().items()}


@pytest.fixture
def predictor():
    return FakePredictor()
'''


def row(cid, split):
    return json.dumps({"id": cid, "request": f"A Glean agent that summarizes {split} page number {cid} of the wiki.",
                       "expected": {**GLEAN, "reason": "Search only."}, "rules": ["glean-only"]})


@pytest.fixture
def project(pytester):
    pytester.makeini(f"""
        [pytest]
        pythonpath = {ROOT}
        router_data_dir = data
        router_gate_field_margin = 0.1
        markers =
            gate: g
            snapshot: s
    """)
    pytester.makeconftest(CONFTEST)
    data = pytester.path / "data"
    data.mkdir()
    for split, ids in (("train", ["tr1"]), ("val", ["va1"]), ("test", CASES)):
        (data / f"{split}.jsonl").write_text("\n".join(row(i, split) for i in ids) + "\n")
    pytester.makepyfile(test_evals="from evals.test_gate import *  # noqa\nfrom evals.test_snapshot import *  # noqa\n")
    write_answers(pytester)
    return pytester


def write_answers(pytester, wrong=(), identity="w", seeds=2, wrong_in=None, prompt_wrong=()):
    """The trained candidates answer GLEAN except `wrong` cases (risk high), in every seed or only in `wrong_in`; the
    prompt candidates (unchanged weights) get `prompt_wrong` wrong."""
    def decisions(seed, wrong=wrong):
        bad = set(wrong) if wrong_in is None or seed in wrong_in else set()
        return {c: {"parse": "ok", **GLEAN, **({"risk": "high"} if c in bad else {})} for c in CASES}

    runs = {f"seed-{s}": {"identity": f"{identity}{s}", "decisions": decisions(s)} for s in range(seeds)}
    answers = {**{n: runs for n in TRAINED}, **{n: {"main": {"identity": "p", "decisions": decisions(0, prompt_wrong)}} for n in PROMPT_ONLY}}
    (pytester.path / "answers.json").write_text(json.dumps(answers))


def record(pytester) -> dict:
    return json.loads((pytester.path / "golden" / GOLDEN_ID / "expectations.json").read_text())


def test_no_record_fails_and_says_how_to_record(project):
    result = project.runpytest("-k", "gate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline for tiny@cpu-fp32*pytest evals --update-expectations*"])


def test_a_record_for_another_runtime_is_an_error_naming_it(project):
    other = project.path / "golden" / "tiny@cuda-nf4-bf16"
    other.mkdir(parents=True)
    (other / "expectations.json").write_text(json.dumps({"format": 1, "candidates": {}}))
    result = project.runpytest("-k", "gate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline for tiny@cpu-fp32; the recorded ones are for tiny@cuda-nf4-bf16*"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_record_then_strict_then_determinism_break(project, workers):
    write_answers(project, wrong=["t00"], prompt_wrong=["t00"])
    project.runpytest("--update-expectations", *workers).assert_outcomes(skipped=1 + N)
    rec = record(project)
    assert set(rec["candidates"]) == {*TRAINED, *PROMPT_ONLY} >= {"base", "few-shot", "fine-tuned"}
    assert rec["candidates"]["fine-tuned"]["seed-1"]["identity"] == "w1"
    assert rec["candidates"]["fine-tuned"]["seed-0"]["decisions"]["t00"]["risk"] == "high"

    result = project.runpytest(*workers)
    result.assert_outcomes(passed=1 + N)

    write_answers(project, wrong=["t00", "t01"], prompt_wrong=["t00", "t01"])  # same weights, another answer
    result = project.runpytest(*workers)
    result.assert_outcomes(failed=N, passed=1)  # every snapshot moved; the gate sees one broken case of 12: noise
    result.stdout.fnmatch_lines(["*decision(s) differ from*with the same weights*", "*seed-0 t01: risk 'low' -> 'high'*"])


def test_new_weights_benign_change_passes_and_lists_what_moved(project):
    project.runpytest("--update-expectations").assert_outcomes(skipped=1 + N)
    write_answers(project, wrong=["t03"], identity="new")  # retrained: one case broke
    result = project.runpytest("-rA")
    result.assert_outcomes(passed=1 + len(PROMPT_ONLY), xfailed=len(TRAINED))  # the trained ones drift
    result.stdout.fnmatch_lines(["*fixed 0, broken 1, unstable 0, unchanged 11, new 0, p = 0.5: no regression*"])
    summary = json.loads((project.path / "reports" / "scorecard.json").read_text())
    assert summary["gate"]["ok"] and summary["gate"]["rerecord"] == "pytest evals --update-expectations"


def test_new_weights_regression_fails_naming_the_cases(project):
    project.runpytest("--update-expectations").assert_outcomes(skipped=1 + N)
    write_answers(project, wrong=CASES[:6], identity="new")
    result = project.runpytest("-k", "gate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*merge gate: fixed 0, broken 6*REGRESSION*",
        "*broken: t00 (glean-only) expected tier=*risk='low'* | baseline seed-0: right; seed-1: right | now seed-0: risk='high'*",
        "*re-record and commit: pytest evals --update-expectations*",
    ])


def test_unstable_cases_are_listed_and_do_not_fail(project):
    project.runpytest("--update-expectations").assert_outcomes(skipped=1 + N)
    write_answers(project, wrong=CASES[:2], identity="new", wrong_in={1})  # seed 1 misses two cases, seed 0 none
    result = project.runpytest("-k", "gate", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*fixed 0, broken 0, unstable 2*no regression*"])


def test_a_filtered_re_record_is_refused_and_keeps_the_record(project):
    project.runpytest("--update-expectations").assert_outcomes(skipped=1 + N)
    before = record(project)
    result = project.runpytest("--update-expectations", "-k", "few")
    result.stderr.fnmatch_lines(["*--update-expectations re-records the whole record*deselected*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert record(project) == before
