"""The dataset gate on bad input: each failure names the file, the line and the field."""

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DATA = ROOT / "evals" / "data"


@pytest.fixture
def project(pytester):
    """A suite checkout whose data folder the test may break."""
    shutil.copytree(DATA, pytester.path / "data")
    pytester.makeini(f"""
        [pytest]
        pythonpath = {ROOT}
        router_data_dir = data
        markers =
            dataset: gate
    """)
    pytester.makeconftest('pytest_plugins = ["fixtures.options", "fixtures.plugin"]')
    pytester.makepyfile(test_gate="from evals.test_dataset import *  # noqa: F401,F403")
    return pytester


def lines(project, split):
    return (project.path / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()


def write(project, split, rows):
    (project.path / "data" / f"{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


def edit_row(project, split, index, change):
    rows = lines(project, split)
    row = json.loads(rows[index])
    change(row)
    rows[index] = json.dumps(row)
    write(project, split, rows)


def test_shipped_data_passes(project):
    result = project.runpytest("-m", "dataset")
    result.assert_outcomes(passed=8)


def test_malformed_json(project):
    rows = lines(project, "train")
    rows[4] = rows[4][:-1]  # drop the closing brace
    write(project, "train", rows)
    result = project.runpytest("-m", "dataset")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*data/train.jsonl:5: field '<json>': malformed JSON*"])


def test_missing_field(project):
    edit_row(project, "val", 2, lambda row: row.pop("request"))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/val.jsonl:3: field 'request': missing field 'request'*"])


def test_unknown_platform(project):
    edit_row(project, "test", 0, lambda row: row["expected"].update(recommended_platform="Databricks + Tableau"))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/test.jsonl:1: field 'expected.recommended_platform': 'Databricks + Tableau' is not one of*"])


def test_label_that_breaks_its_rule(project):
    """The notes' bias as a data bug: a finance writeback relabelled with Salesforce."""
    rows = lines(project, "train")
    index = next(i for i, r in enumerate(rows) if "bias-writeback-no-crm" in json.loads(r)["rules"])
    edit_row(project, "train", index, lambda row: row["expected"].update(recommended_platform="Databricks app + Salesforce integration"))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines([f"*data/train.jsonl:{index + 1}: field 'expected.recommended_platform': rule 'custom-build' requires 'Databricks app'*"])


def test_duplicate_id(project):
    first_id = json.loads(lines(project, "train")[0])["id"]
    edit_row(project, "test", 3, lambda row: row.update(id=first_id))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines([f"*data/test.jsonl:4: field 'id': duplicate id '{first_id}', first at data/train.jsonl:1*"])


def test_leaked_test_example(project):
    train_request = json.loads(lines(project, "train")[7])["request"]
    edit_row(project, "test", 5, lambda row: row.update(request="  " + train_request.upper() + "!! "))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/test.jsonl:6: field 'request': test case * equals train case * at data/train.jsonl:8*"])


def test_near_duplicate_leak(project):
    words = json.loads(lines(project, "train")[9])["request"].split()
    edit_row(project, "val", 1, lambda row: row.update(request=" ".join(words + ["please"])))
    result = project.runpytest("-m", "dataset")
    result.stdout.fnmatch_lines(["*data/val.jsonl:2: field 'request': val case * is 0.* similar (threshold 0.6) to train case*"])


def break_train_under_the_evals(project):
    """A malformed first train row, and the eval tests collected next to the dataset gate."""
    rows = lines(project, "train")
    rows[0] = "{not json"
    write(project, "train", rows)
    project.makepyfile(test_evals="from evals.test_policy import *  # noqa: F401,F403")
    project.makeini(f"""
        [pytest]
        pythonpath = {ROOT}
        router_data_dir = data
        markers =
            dataset: gate
            policy: evals
    """)


def test_a_failing_gate_stops_training(project, monkeypatch):
    """With a broken dataset, the eval tests fail with the gate's message and nothing trains."""
    break_train_under_the_evals(project)
    result = project.runpytest("-m", "policy", "--cache-dir", str(project.path / "cache"))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the dataset gate fails, so nothing was trained or predicted*", "*train.jsonl:1*"])
    assert not (project.path / "cache").exists()
