"""A scorecard never passes for what it is not: filtered runs say so, the set is published whole, a failed gate marks it stale."""

import json

import pytest

from reports.plugin import publish_set
from tests.test_scorecard_plugin import FAKE_EVALS, XDIST, project  # noqa: F401  (project is a fixture)


@XDIST
def test_a_filtered_run_says_so_at_the_top(project, xdist):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    project.runpytest_subprocess(*xdist, "-k", "fine")
    out = project.path / "reports"
    md = (out / "scorecard.md").read_text()
    assert md.startswith("> **Partial run:** filtered by -k 'fine'")
    summary = json.loads((out / "scorecard.json").read_text())
    assert summary["partial_run"]["filters"][0] == "-k 'fine'"
    if not xdist:  # deselection happens on the workers under xdist; -k already names the filter
        assert "25 test(s) deselected" in summary["partial_run"]["filters"]


@pytest.mark.parametrize("args, named", [
    (["-m", "not slow"], "-m 'not slow'"),
    (["--deselect", "test_fake_evals.py::test_without_records"], "--deselect test_fake_evals.py::test_without_records"),
    (["test_fake_evals.py::test_policy"], "node ids test_fake_evals.py::test_policy"),
])
def test_every_kind_of_filter_is_named(project, args, named):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    project.runpytest_subprocess(*args)
    assert named in (project.path / "reports" / "scorecard.md").read_text().splitlines()[0]


def test_a_full_run_is_not_marked(project):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    project.runpytest_subprocess()
    out = project.path / "reports"
    assert (out / "scorecard.md").read_text().startswith("# Router scorecard")
    assert "partial_run" not in json.loads((out / "scorecard.json").read_text())


def test_a_stale_member_of_the_set_is_removed(project):
    """An earlier run left a loss curve; this run has none: no old picture beside the new numbers."""
    out = project.path / "reports"
    out.mkdir()
    (out / "loss_curve.png").write_bytes(b"old curve")
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    project.runpytest_subprocess()
    assert sorted(p.name for p in out.iterdir()) == ["scorecard.json", "scorecard.md", "scorecard.png"]


def test_a_run_killed_while_publishing_leaves_no_old_member(tmp_path):
    for name in ("scorecard.json", "scorecard.png", "scorecard.md", "loss_curve.png"):
        (tmp_path / name).write_bytes(b"old")
    with pytest.raises(TypeError):  # dies while writing the png
        publish_set(tmp_path, {"scorecard.json": b"new", "scorecard.png": None, "scorecard.md": b"new"})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")} == {"scorecard.json": b"new"}


GATE_FAILS = '''
import pytest

@pytest.mark.dataset
def test_rows_parse():
    pytest.fail("data/train.jsonl:1: field '<json>': malformed JSON", pytrace=False)
'''


@XDIST
def test_a_failed_dataset_gate_marks_the_previous_scorecard_stale(project, xdist):
    project.makepyfile(test_fake_evals=FAKE_EVALS)
    project.runpytest_subprocess()
    out = project.path / "reports"
    before = (out / "scorecard.md").read_text()
    (project.path / "test_fake_evals.py").unlink()
    project.makepyfile(test_gate=GATE_FAILS)
    result = project.runpytest_subprocess(*xdist)
    md = (out / "scorecard.md").read_text()
    assert md.startswith("> **Stale:** the dataset gate failed") and md.endswith(before)
    assert "dataset gate failed" in json.loads((out / "scorecard.json").read_text())["stale"]
    result.stdout.fnmatch_lines(["scorecard: reports?scorecard.md marked stale*"])
    project.runpytest_subprocess(*xdist)  # marked once, not once per failing run
    assert (out / "scorecard.md").read_text() == md
