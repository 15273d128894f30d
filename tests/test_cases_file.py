"""`pytest evals --cases FILE` on real-world files (evals/cases_file.py): flat or nested rows, reason and rules
optional, duplicate ids and empty files refused with file:line: field, unknown keys warned about, the file's ids
namespaced apart from the test split's, and a per-decision table when the rows carry no rules."""

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from evals.asserts import assert_decision
from evals.cases_file import CasesFileWarning, load_cases_file
from evals.dataset import DatasetError
from evals.metamorphic import bias_cases
from fixtures.parse import Parsed
from fixtures.predictions import Prediction, PredictionStore, predict
from reports.render_markdown import render_markdown
from reports.summary import summarize
from reports.scoring import make_record, score
from tests.canned import prediction_from
from tests.test_dataset_gate import edit_row, project  # noqa: F401  (project is a fixture)
from tests.test_loop_tiny import suite  # noqa: F401  (suite is a fixture)

GLEAN = {"tier": "Trusted Functional Builder", "risk": "low", "recommended_platform": "Glean", "needs_review": False}
BUILD = {"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": "Databricks app", "needs_review": True}


def row(cid, request="A Glean agent that answers questions from the travel policy pages.", **fields):
    return {"id": cid, "request": request, **(fields or GLEAN)}


def write(path, *rows):
    """One JSON line per row; a string is written as it is (a blank or broken line)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def cases_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # messages show the path relative to the working directory: cases.jsonl
    return tmp_path / "cases.jsonl"


def problems(policy, path) -> str:
    with pytest.raises(DatasetError) as failed:
        load_cases_file(path, policy)
    return str(failed.value)


def namesakes(policy, splits, cases_path):
    """A test case that a bias check uses as its source, and a file case with the same id but another request."""
    group, variant, source = next(b for b in bias_cases(splits["test"]) if b[0] == "swap-names")
    (mine,) = load_cases_file(write(cases_path, row(source.id, **BUILD, request="Build an app that books rooms.")), policy)
    return source, variant, mine


# ---- what a row needs ----------------------------------------------------------------------------------------


def test_a_flat_row_of_id_request_and_the_four_decision_fields_loads(policy, cases_path):
    (case,) = load_cases_file(write(cases_path, row("trip-1")), policy)
    assert (case.id, case.split, case.where, case.rules, case.expected) == ("trip-1", "cases", "cases.jsonl:1", (), GLEAN)


def test_a_nested_row_without_reason_or_rules_loads(policy, cases_path):
    (case,) = load_cases_file(write(cases_path, {"id": "b", "request": "Build an app.", "expected": BUILD}), policy)
    assert case.expected == BUILD


def test_the_reason_is_never_read_nor_scored(policy, cases_path):
    nested = {"id": "n", "request": "Build an app.", "expected": {**BUILD, "reason": "Ours."}}
    flat, kept = load_cases_file(write(cases_path, row("f"), nested), policy)
    assert "reason" not in flat.expected and "reason" not in kept.expected  # nothing downstream can compare it
    for case in (flat, kept):
        answer = Prediction("fine-tuned", case.key, "", Parsed("ok", {**case.expected, "reason": "Something else."}), True, 1)
        assert score(case.expected, answer.parsed.obj, True, True)["exact"]
        assert_decision("fine-tuned", case, {"main": answer})  # passes whatever the reason says


def test_rules_are_optional_but_checked_when_given(policy, cases_path):
    text = problems(policy, write(cases_path, {**row("r"), **BUILD, "rules": ["glean-only"]}))
    assert "cases.jsonl:1: field 'recommended_platform': rule 'glean-only' requires 'Glean'" in text


@pytest.mark.parametrize("bad, message", [
    ({"tier": "Wizard"}, "cases.jsonl:1: field 'tier': 'Wizard' is not one of"),
    ({"needs_review": "no"}, "cases.jsonl:1: field 'needs_review': 'no' is not of type 'boolean'"),
    ({"expected": GLEAN}, "cases.jsonl:1: field 'tier': at the top level beside 'expected'"),
])
def test_a_bad_flat_row_names_the_field_as_written(policy, cases_path, bad, message):
    assert message in problems(policy, write(cases_path, {**row("x"), **bad}))


def test_a_row_missing_a_decision_field_names_it(policy, cases_path):
    partial = {k: v for k, v in row("x").items() if k != "risk"}
    assert "cases.jsonl:2: field 'risk': missing field 'risk' (a row needs id, request and tier, risk" in problems(
        policy, write(cases_path, row("ok"), partial))
    assert "cases.jsonl:1: field 'expected': no decision" in problems(policy, write(cases_path, {"id": "x", "request": "r"}))


# ---- duplicates, empty files, unknown keys -----------------------------------------------------------------------


def test_a_duplicate_id_is_an_error_naming_both_lines(policy, cases_path):
    text = problems(policy, write(cases_path, row("x"), row("y"), "", row("x", request="Another request.")))
    assert text == "cases.jsonl:4: field 'id': duplicate id 'x', first on line 1"


@pytest.mark.parametrize("content", ["", "\n\n   \n"], ids=["empty", "blank-lines"])
def test_an_empty_file_is_an_error(policy, cases_path, content):
    cases_path.write_text(content)
    assert problems(policy, cases_path) == "cases.jsonl:0: field '<file>': the file is empty: it holds no rows"


def test_unknown_keys_warn_with_file_line_and_key(policy, cases_path):
    rows = [row("a"), {**row("b"), "source": "ticket-9"}, {"id": "c", "request": "Build it.", "expected": {**BUILD, "confidence": 0.9}}]
    with pytest.warns(CasesFileWarning) as caught:
        cases = load_cases_file(write(cases_path, *rows), policy)
    assert [str(w.message).split(", ignored")[0] for w in caught] == [
        "cases.jsonl:2: field 'source': unknown key 'source'",
        "cases.jsonl:3: field 'expected.confidence': unknown key 'confidence'",
    ]
    assert [c.id for c in cases] == ["a", "b", "c"]  # the rows are still scored


def test_known_keys_do_not_warn(policy, cases_path, recwarn):
    load_cases_file(write(cases_path, {**row("a"), "reason": "r", "rules": ["glean-only"]}), policy)
    assert not [w for w in recwarn if issubclass(w.category, CasesFileWarning)]


# ---- namespacing ---------------------------------------------------------------------------------------------


def test_file_ids_are_namespaced_and_the_test_splits_keys_are_unchanged(policy, splits, cases_path):
    from evals.expectations import load
    from evals.golden import golden_key
    from fixtures.options import DEFAULT_BASE_MODEL

    source, variant, mine = namesakes(policy, splits, cases_path)
    assert (mine.id, mine.key) == (source.id, f"cases:{source.id}") and source.key == source.id
    recorded = load(Path(__file__).parent.parent / "golden", golden_key(DEFAULT_BASE_MODEL, "cpu-bf16"))
    keys = {c.key for c in splits["test"]} | {c.key for _, c, _ in bias_cases(splits["test"])}
    assert set(recorded.decisions("fine-tuned")["seed-0"]) == keys  # the committed record still matches every key


def test_a_split_id_with_the_key_separator_fails_the_gate(project):  # noqa: F811
    edit_row(project, "test", 2, lambda r: r.update(id="cases:fin_001"))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/test.jsonl:3: field 'id': 'cases:fin_001' contains ':', kept for namespaced keys*"])


def test_the_cases_a_candidate_is_asked_keep_a_file_case_and_its_test_namesake(policy, splits, cases_path):
    from fixtures.eval_params import CASES_KEY, cases_for

    source, variant, mine = namesakes(policy, splits, cases_path)
    config = SimpleNamespace(stash=pytest.Stash())
    config.stash[CASES_KEY] = {"policy": [mine], "bias": [("swap-names", variant, source)], "candidates": ["fine-tuned"], "error": None}
    assert [c.key for c in cases_for(config, "fine-tuned")] == [mine.key, variant.key, source.key]


def test_the_predictor_answers_a_bias_source_from_its_own_request(policy, splits, cases_path, monkeypatch):
    """Asked for the file case first, then for the test case of the same id: each gets its own prediction."""
    import fixtures.predictor as predictor_module
    from fixtures.candidates import load_candidates
    from fixtures.generate import GenerationSettings

    source, variant, mine = namesakes(policy, splits, cases_path)

    def fake_predict(model, tokenizer, policy, candidate, cases, key, store, generation, log=None, groups=()):
        return {c.key: prediction_from(candidate.name, c.key, {"parse": "ok", **c.expected}, c.request) for c in cases}

    monkeypatch.setattr(predictor_module, "predict", fake_predict)
    monkeypatch.setattr(predictor_module.Predictor, "generation_for", lambda self, candidate: GenerationSettings(8, 1))
    host = SimpleNamespace(ref=SimpleNamespace(identity="i"), runtime=SimpleNamespace(label="cpu-fp32", kernels=""),
                           tokenizer=SimpleNamespace(chat_template="t"), using=lambda path, merge=False: contextlib.nullcontext())
    candidates = {c.name: c for c in load_candidates(policy, splits["train"])}
    predictor = predictor_module.Predictor(SimpleNamespace(cache_dir=cases_path.parent), policy, candidates, host,
                                           {"phases": {}}, cases_for=lambda name: [mine], log=lambda line: None)
    assert predictor.predict("base", mine)["main"].identity == mine.request
    assert predictor.predict("base", source)["main"].identity == source.request


def test_stored_predictions_are_returned_by_key(policy, splits, cases_path):
    from fixtures.generate import GenerationSettings

    source, _, mine = namesakes(policy, splits, cases_path)
    store = PredictionStore(cases_path.parent / "predictions")
    for c in (source, mine):
        store.write("k", c.request, {"raw": c.request, "new_tokens": 1, "candidate": "base", "case_id": c.key})
    got = predict(None, None, policy, SimpleNamespace(name="base"), [source, mine], "k", store, GenerationSettings(8, 1))
    assert {k: p.raw for k, p in got.items()} == {source.key: source.request, mine.key: mine.request}


# ---- the scorecard -------------------------------------------------------------------------------------------


def test_rows_without_rules_are_grouped_by_expected_tier_and_platform(policy, cases_path):
    rows = [row("g1"), row("g2", request="A Glean agent for the sales wiki."), row("b1", request="Build an app.", **BUILD)]
    cases = load_cases_file(write(cases_path, *rows), policy)
    records = [make_record("policy", "fine-tuned", c, prediction_from("fine-tuned", c.key, {"parse": "ok", **GLEAN}, "w"))
               for c in cases]
    summary = summarize(records, {})
    assert summary["rules"] == {"expected Trusted Functional Builder · Glean": {"fine-tuned": {"k": 2, "n": 2}},
                                "expected Trusted Technical Builder · Databricks app": {"fine-tuned": {"k": 0, "n": 1}}}
    md = render_markdown(summary)
    assert "| expected Trusted Technical Builder · Databricks app | 0/1 " in md
    assert "| b1     | policy/cases at cases.jsonl:3 |" in md  # the failing case as written, with its file:line


# ---- end to end ----------------------------------------------------------------------------------------------


@pytest.fixture
def evals_project(project):  # noqa: F811
    """The gate's project with the policy evals added."""
    ini = project.path / "tox.ini"
    ini.write_text(ini.read_text() + "    policy: evals\n")
    project.makepyfile(test_evals="from evals.test_policy import *  # noqa: F401,F403")
    return project


@pytest.mark.parametrize("rows, message", [
    ((), "*cases.jsonl:0: field '<file>': the file is empty: it holds no rows*"),
    ((row("x"), row("x")), "*cases.jsonl:2: field 'id': duplicate id 'x', first on line 1*"),
], ids=["empty", "duplicate"])
def test_a_bad_cases_file_fails_the_run_and_predicts_nothing(evals_project, rows, message):
    path = write(evals_project.path / "cases.jsonl", *rows)
    result = evals_project.runpytest("-m", "policy", "--cases", str(path), "--cache-dir", str(evals_project.path / "cache"))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the dataset gate fails, so nothing was trained or predicted*", message])
    assert not (evals_project.path / "cache").exists()


def test_unknown_keys_are_listed_in_the_warnings_summary(evals_project):
    path = write(evals_project.path / "cases.jsonl", row("a"), {**row("b"), "ticket": "T-9"})
    result = evals_project.runpytest("-m", "policy", "--cases", str(path), "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*warnings summary*", "*CasesFileWarning: cases.jsonl:2: field 'ticket': unknown key 'ticket', ignored*"])


def test_pytest_evals_cases_scores_a_flat_file_end_to_end(suite, splits):  # noqa: F811
    """Rows of id, request and the four decision fields only, one id shared with a test case, one unknown key: the
    prompt candidates answer on the tiny model (no training), every failure names the row, the scorecard groups by
    decision."""
    pytester, args = suite
    _, _, source = next(b for b in bias_cases(splits["test"]) if b[0] == "swap-names")
    write(pytester.path / "five.jsonl", row(source.id), {**row("b1", request="Build an app that books rooms.", **BUILD), "ticket": "T-9"},
          row("g2", request="A Glean agent for the sales wiki."))
    result = pytester.runpytest_subprocess(*args, "-k", "not fine-tuned and not schema", "--assert-prompt-candidates")
    # base and few-shot x 3 rows fail (the random tiny model gets none right); the classical candidate gets all 3
    result.assert_outcomes(failed=6, passed=3, deselected=12)
    result.stdout.fnmatch_lines([f"*base got {source.id} wrong*", f"case {source.id} at five.jsonl:1; rules: -"])
    result.stdout.fnmatch_lines(["*five.jsonl:2: field 'ticket': unknown key 'ticket'*"])
    summary = json.loads((pytester.path / "reports" / "scorecard.json").read_text())
    assert {c: t["exact"]["n"] for c, t in summary["accuracy"]["cases"].items()} == {"base": 3, "classical": 3, "few-shot": 3}
    assert sorted(summary["rules"]) == ["expected Trusted Functional Builder · Glean", "expected Trusted Technical Builder · Databricks app"]
    assert summary["rules"]["expected Trusted Functional Builder · Glean"]["base"]["n"] == 2
    assert any(f.startswith("--cases") for f in summary["partial_run"]["filters"])
