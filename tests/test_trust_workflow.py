"""The example workflows grant only the rights each job needs (issue #29), pin every action by commit, and gate on the
runner's own runtime (issue #28 item 4)."""

import re

import pytest

from tests.test_workflow import FOLLOW_UP, WORKFLOW, load

WORKFLOWS = [WORKFLOW, FOLLOW_UP]


def all_steps(wf: dict):
    return [(name, s) for name, job in wf["jobs"].items() for s in job["steps"]]


def test_the_workflow_token_reads_only_and_so_does_the_job_running_the_pull_request():
    wf = load()
    assert wf["permissions"] == {"contents": "read"}
    assert wf["jobs"]["gate"]["permissions"] == {"contents": "read"}


def test_only_the_comment_job_may_write_and_it_runs_none_of_the_pull_requests_code():
    wf = load()
    writers = {name for name, job in wf["jobs"].items() if "write" in (job.get("permissions") or {}).values()}
    assert writers == {"comment"}
    job = wf["jobs"]["comment"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert job["needs"] == "gate" and "always()" in job["if"]
    (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"  # the base branch's reports/
    (download,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"]["name"] == "scorecard-comment"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == ['python -m reports.comment --body comment/body.md --out comment/body.md --post "$PR_NUMBER"']
    assert not any("--author" in run for run in runs)  # github-actions[bot]: the account of GITHUB_TOKEN


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_checkout_leaves_no_credentials_behind(path):
    checkouts = [s for _, s in all_steps(load(path)) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all((s.get("with") or {}).get("persist-credentials") is False for s in checkouts)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_tag_beside_it(path):
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert lines
    pinned = re.compile(r"(- )?uses: (?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40}) # v\d+\.\d+\.\d+$")
    assert [line for line in lines if not pinned.fullmatch(line)] == []
    shas = {}  # one commit per repository across the file (actions/cache/restore and /save are one repository)
    for line in lines:
        m = pinned.fullmatch(line)
        shas.setdefault("/".join(m["action"].split("/")[:2]), set()).add(m["sha"])
    assert all(len(s) == 1 for s in shas.values()), shas


def test_the_gate_runs_on_the_runners_own_runtime_and_re_records_it():
    """No --cpu-precision: `auto` is bf16 with AMX, fp32 otherwise, and --update-expectations records that runtime."""
    wf = load()
    forced = [(job, s.get("name")) for job, s in all_steps(wf) if "--cpu-precision" in s.get("run", "")]
    assert forced == []
    (re_record,) = [s for _, s in all_steps(wf) if "--update-expectations" in s.get("run", "")]
    assert "python -m pytest evals" in re_record["run"]
    header = WORKFLOW.read_text(encoding="utf-8").split("\nname:")[0]
    assert "--cpu-precision bf16" not in header and "nearest record of the same base model" in header
