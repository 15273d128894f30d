"""The example workflow, checked the way a user's repository would run it.

No runner emulator is available offline (`act` needs Docker and network), so this file has three layers:
1. actionlint on both workflow files;
2. the parsed YAML: triggers, paths, pins, `if: always()` on the cache save and uploads;
3. a small emulation of the gate job on a clean clone (git clone of this repository, plus uncommitted
   changes): every `run:` step runs for real in bash, in order, with GitHub's step `if:` rules, outputs and
   environment; the `uses:` steps it needs are emulated (actions/cache restore and save against a local
   store with GitHub's key and restore-keys matching, upload-artifact and download-artifact through a folder,
   checkout as the clone (a sparse checkout pruned to its folders), setup-python as a no-op), and the comment
   job runs after the gate on a runner of its own, posting to a local fake of GitHub's REST API. The expensive parts
   are stubs on PATH: `pip install` (offline), `python -m training` (creates an "adapter" in the cache,
   trains only when none is cached) and `python -m pytest evals` (runs the real dataset gate in the clone
   for the JUnit XML, then writes a scorecard with every fine-tuned case failing and the figures, and fails). What runs for real: the cache keys, the comment
   module, the fork fallback, the re-record patch, the order and conditions of every step.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.test_comment import html_of

ROOT = Path(__file__).parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "eval-gate.yml"
FOLLOW_UP = WORKFLOWS / "eval-gate-comment.yml"
CONSTRAINTS = ROOT / ".ci" / "golden-constraints.txt"
REPO = "owner/router"


def load(path: Path = WORKFLOW) -> dict:
    wf = yaml.safe_load(path.read_text(encoding="utf-8"))
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as true
    return wf


def steps(wf: dict | None = None) -> list[dict]:
    return (wf or load())["jobs"]["gate"]["steps"]


def step(name_part: str, wf: dict | None = None) -> dict:
    (found,) = [s for s in steps(wf) if name_part in s.get("name", s.get("uses", ""))]
    return found


# ---- 1. actionlint -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [WORKFLOW, FOLLOW_UP], ids=lambda p: p.name)
def test_workflow_passes_actionlint(path):
    binary = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(binary).exists():
        pytest.fail("actionlint is not installed: pip install -e '.[dev]'")
    result = subprocess.run([binary, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- 2. the parsed YAML ------------------------------------------------------------------------


def test_triggers_seed_the_cache_and_cover_what_the_gate_depends_on():
    on = load()["on"]
    assert on["push"]["branches"] == ["main"]  # the default branch: its caches are visible to every pull request
    wanted = {"evals/**", "training/**", "fixtures/**", "reports/**", "golden/**", "conftest.py", "pyproject.toml",
              ".github/workflows/eval-gate.yml", ".ci/golden-constraints.txt"}
    assert set(on["pull_request"]["paths"]) == wanted == set(on["push"]["paths"])
    assert on["workflow_dispatch"]["inputs"]["re_record"]["type"] == "boolean"


def test_caches_are_saved_always_under_a_key_that_changes_every_run():
    wf = load()
    saves = [s for s in steps(wf) if s.get("uses", "").startswith("actions/cache/save@")]
    restores = [s for s in steps(wf) if s.get("uses", "").startswith("actions/cache/restore@")]
    assert len(saves) == len(restores) == 2
    assert all(s["if"].startswith("always()") for s in saves)
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in steps(wf)), "actions/cache saves only on success"
    keys = step("Cache keys", wf)["run"]
    assert "GITHUB_RUN_ID" in keys and "GITHUB_RUN_ATTEMPT" in keys


def test_training_is_its_own_step_and_the_gate_writes_junit_xml():
    names = [s.get("id") for s in steps()]
    assert names.index("train") < names.index("gate")
    assert step("Dataset gate and adapter")["run"].startswith("python -m training")
    gate = step("Evals, snapshots")["run"]
    assert "--junitxml=reports/junit.xml" in gate and "--no-train" in gate


def test_uploads_keep_junit_the_full_reports_and_the_loss_curve():
    upload = step("Upload JUnit XML")
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert {"reports/junit.xml", "reports/scorecard.md", "reports/scorecard.json", "reports/scorecard.png",
            "reports/loss_curve.png"} <= set(paths)


def test_install_is_pinned_to_what_the_golden_files_were_recorded_with():
    install = step("Install")["run"]
    assert all("-c .ci/golden-constraints.txt" in line for line in install.splitlines() if "pip install" in line and "--no-deps" not in line)
    pins = dict(line.split("==") for line in CONSTRAINTS.read_text().splitlines() if line and not line.startswith("#"))
    assert {"torch", "transformers", "tokenizers", "peft", "trl"} <= set(pins)
    # The @cpu-bf16 golden files are recorded in this project's environment: the pins must be its versions.
    installed = {name: importlib.metadata.version(name).split("+")[0] for name in pins}
    assert installed == pins


# ---- 3. the job, emulated on a clean clone -------------------------------------------------------

STATUS_FUNCTIONS = re.compile(r"\b(always|success|failure|cancelled)\(")
TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
                   r"|(?P<name>[A-Za-z_][\w-]*(?:\.(?:\*|[A-Za-z_][\w-]*))*))")


def evaluate(expr: str, contexts: dict, failed: bool):
    """A GitHub Actions expression, for the subset the workflow uses: contexts, literals, == != && || !, status functions, contains."""
    out, pos, expr = [], 0, expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unsupported expression {expr!r} at {expr[pos:]!r}")
        pos = m.end()
        if m["str"] is not None:
            out.append(repr(m["str"][1:-1].replace("''", "'")))
        elif m["num"]:
            out.append(m["num"])
        elif m["op"]:
            out.append({"&&": " and ", "||": " or ", "!": " not "}.get(m["op"], m["op"]))
        elif expr[pos:].lstrip().startswith("("):
            out.append(f"fn_{m['name']}")
        elif m["name"] in ("true", "false", "null"):
            out.append({"true": "True", "false": "False", "null": "None"}[m["name"]])
        else:
            out.append(f"ctx({m['name']!r})")

    def ctx(path: str):
        values, many = [contexts], False
        for part in path.split("."):
            if part == "*":
                values, many = [x for v in values for x in (v.values() if isinstance(v, dict) else v or [])], True
            else:
                values = [v.get(part) if isinstance(v, dict) else None for v in values]
        return values if many else values[0]

    def fn_contains(haystack, needle):
        if isinstance(haystack, list):
            return needle in haystack
        return isinstance(haystack, str) and str(needle).lower() in haystack.lower()

    names = {"ctx": ctx, "fn_contains": fn_contains, "fn_always": lambda: True, "fn_cancelled": lambda: False,
             "fn_success": lambda: not failed, "fn_failure": lambda: failed}
    return eval("".join(out), {"__builtins__": {}}, names)  # noqa: S307 - our own tokens only


def text(value) -> str:
    return {True: "true", False: "false", None: ""}.get(value, str(value)) if isinstance(value, (bool, type(None))) else str(value)


class Job:
    """Runs one job's steps in order as a GitHub runner would, with the actions it uses emulated."""

    def __init__(self, wf: dict, workspace: Path, store: Path, event_name: str, event: dict, run_id: int,
                 bin_dir: Path, api_url: str, inputs: dict | None = None, job: str = "gate", needs: dict | None = None,
                 artifacts: Path | None = None):
        self.wf, self.workspace, self.store, self.bin_dir, self.api_url = wf, workspace, store, bin_dir, api_url
        self.run_id, self.failed, self.job = run_id, False, job
        self.steps: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []  # (step name, outcome) in order
        self.result, self.outputs, self.checked_out = "skipped", {}, []  # the job's, for the jobs that need it
        self.summary = workspace.parent / f"summary-{run_id}.md"
        self.artifacts = artifacts or workspace.parent / f"artifacts-{run_id}"
        self.contexts = {
            "github": {"event_name": event_name, "event": event, "repository": REPO, "token": "t0ken",
                       "ref": "refs/heads/main", "run_id": str(run_id), "action": event.get("action"),
                       "workspace": str(workspace), "server_url": "https://github.com"},
            "inputs": inputs or {}, "runner": {"os": "Linux"}, "steps": self.steps, "env": {}, "needs": needs or {},
        }

    def interpolate(self, value: str) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: text(evaluate(m[1], self.contexts, self.failed)), value)

    def condition(self, expr) -> bool:
        expr = str(expr if expr is not None else "success()").strip()
        if expr.startswith("${{") and expr.endswith("}}"):
            expr = expr[3:-2]
        if not STATUS_FUNCTIONS.search(expr):
            expr = f"success() && ({expr})"
        return bool(evaluate(expr, self.contexts, self.failed))

    def run(self) -> "Job":
        job = self.job
        spec = self.wf["jobs"][job]
        if any(n["result"] != "success" for n in self.contexts["needs"].values()) and not STATUS_FUNCTIONS.search(str(spec.get("if"))):
            self.log.append((job, "skipped"))  # a job runs after a failed or skipped one only with a status function
            return self
        if not self.condition(spec.get("if")):
            self.log.append((job, "skipped"))
            return self
        for i, s in enumerate(spec["steps"]):
            name = s.get("name") or s["uses"]
            record = {"outputs": {}}
            if not self.condition(s.get("if")):
                record["outcome"] = "skipped"
            else:
                ok = self.uses(s, record) if "uses" in s else self.shell(s, record, i)
                record["outcome"] = "success" if ok else "failure"
                self.failed |= not ok
            if "id" in s:
                self.steps[s["id"]] = record
            self.log.append((name, record["outcome"]))
        self.result = "failure" if self.failed else "success"
        self.outputs = {k: self.interpolate(str(v)) for k, v in (spec.get("outputs") or {}).items()}
        return self

    def env(self, s: dict) -> dict:
        env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "USER")}
        env.update(PATH=f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}", CI="true", GITHUB_ACTIONS="true",
                   GITHUB_REPOSITORY=REPO, GITHUB_RUN_ID=str(self.run_id), GITHUB_RUN_ATTEMPT="1", RUNNER_OS="Linux",
                   GITHUB_SERVER_URL="https://github.com", GITHUB_API_URL=self.api_url,
                   GITHUB_STEP_SUMMARY=str(self.summary), GITHUB_WORKSPACE=str(self.workspace))
        for scope in (self.wf.get("env") or {}, self.wf["jobs"][self.job].get("env") or {}, s.get("env") or {}):
            env.update({k: self.interpolate(str(v)) for k, v in scope.items()})
        return env

    def shell(self, s: dict, record: dict, i: int) -> bool:
        assert (s.get("shell") or self.wf["defaults"]["run"]["shell"]) == "bash"
        script = self.workspace.parent / f"step-{self.run_id}-{i}.sh"
        script.write_text(self.interpolate(s["run"]))
        output = self.workspace.parent / f"output-{self.run_id}-{i}"
        output.write_text("")
        env = {**self.env(s), "GITHUB_OUTPUT": str(output)}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=self.workspace,
                              env=env, capture_output=True, text=True, timeout=300)
        record["log"] = done.stdout + done.stderr
        record["outputs"] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return done.returncode == 0

    def uses(self, s: dict, record: dict) -> bool:
        action = s["uses"].split("@")[0]
        args = {k: self.interpolate(text(v)) for k, v in (s.get("with") or {}).items()}  # YAML's false is "false"
        if action == "actions/checkout":
            return self.checkout(args)
        if action == "actions/setup-python":
            return True  # `python` is this environment's, behind the stubs
        if action == "actions/download-artifact":
            return self.download(args)
        if action == "actions/cache/restore":
            return self.cache_restore(args, record)
        if action == "actions/cache/save":
            return self.cache_save(args, record)
        if action == "actions/upload-artifact":
            return self.upload(args, record)
        raise AssertionError(f"no emulation for {action}")

    def checkout(self, args: dict) -> bool:
        """The workspace is the clone; a sparse checkout (cone mode) keeps the root's files and the folders named."""
        assert args.get("persist-credentials") == "false", "checkout would keep the job's token in .git/config"
        self.checked_out.append(args.get("ref", ""))
        keep = set(args.get("sparse-checkout", "").split())
        if keep:
            for path in self.workspace.iterdir():
                if path.is_dir() and path.name != ".git" and path.name not in keep:
                    shutil.rmtree(path)
        return True

    def download(self, args: dict) -> bool:
        """download-artifact v4 from this run, by name, into `path`."""
        source = self.artifacts / args["name"]
        if not source.is_dir():
            return False
        shutil.copytree(source, self.workspace / args.get("path", "."), dirs_exist_ok=True)
        return True

    def cache_restore(self, args: dict, record: dict) -> bool:
        saved = sorted(self.store.glob("*/meta.json"), key=lambda p: json.loads(p.read_text())["order"], reverse=True)
        keys = [json.loads(p.read_text())["key"] for p in saved]
        match = args["key"] if args["key"] in keys else next(
            (k for prefix in args.get("restore-keys", "").split() for k in keys if k.startswith(prefix)), None)
        record["outputs"] = {"cache-hit": text(match == args["key"]), "cache-primary-key": args["key"],
                             "cache-matched-key": match or ""}
        if match:
            shutil.copytree(self.store / slug(match) / "files", self.workspace, dirs_exist_ok=True)
        return True

    def cache_save(self, args: dict, record: dict) -> bool:
        folder = self.store / slug(args["key"])
        if folder.exists():
            record["collision"] = True  # GitHub: "another job may be creating this cache", nothing saved
            return True
        paths = [p for p in args["path"].split() if (self.workspace / p).exists()]
        if not paths:
            record["warning"] = "no paths exist, nothing saved"
            return True
        for p in paths:
            shutil.copytree(self.workspace / p, folder / "files" / p)
        order = len(list(self.store.glob("*/meta.json")))
        (folder / "meta.json").write_text(json.dumps({"key": args["key"], "order": order, "paths": paths}))
        return True

    def upload(self, args: dict, record: dict) -> bool:
        target = self.artifacts / args["name"]
        if target.exists():
            return False  # upload-artifact v4: a name is used once per run
        files = sorted({f for pattern in args["path"].split() for found in self.workspace.glob(pattern.rstrip("/"))
                        for f in ([found] if found.is_file() else [x for x in found.rglob("*") if x.is_file()])})
        if files:  # as upload-artifact v4: paths inside the artifact are relative to the files' common ancestor
            root = Path(os.path.commonpath([f.parent for f in files]))
            for f in files:
                (target / f.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target / f.relative_to(root))
        record["outputs"] = {"artifact-url": f"https://github.com/{REPO}/actions/runs/{self.run_id}/artifacts/{abs(hash(args['name'])) % 1000}"}
        return True

    def outcomes(self) -> dict:
        return dict(self.log)


def slug(key: str) -> str:
    return re.sub(r"[^\w.-]", "_", key)


STUB = r'''
"""Stands in for the expensive commands: training and the eval run."""
import json, os, pathlib, sys

kind, args = sys.argv[1], sys.argv[2:]
def opt(name):
    for i, a in enumerate(args):
        if a == name:
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
cache = pathlib.Path(opt("--cache-dir"))
adapter = cache / "adapters" / "stub-adapter" / "manifest.json"
if kind == "training":
    if adapter.exists():
        print("[router] adapter cached at", adapter.parent)
    else:
        adapter.parent.mkdir(parents=True)
        adapter.write_text("{}")
        with open(cache / "adapters" / "history.jsonl", "a") as f:
            f.write("{}\n")
        (cache / "base-models").mkdir(parents=True, exist_ok=True)
        (cache / "base-models" / "model.safetensors").write_text("weights")
        print("[router] trained in 0s")
    sys.exit(0)
if "--no-train" in args and not adapter.exists():
    sys.exit("no cached adapter and --no-train was given")
if "--update-expectations" in args:
    path = pathlib.Path("golden/stub-model@cpu-fp32/expectations.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "candidates": {"fine-tuned": {"seed-0": {"identity": "w", "decisions": {}}}}}) + "\n")
    sys.exit(1)
# The real dataset gate, through the clone's own conftest and plugins, writes the real JUnit XML ...
import subprocess
gate = subprocess.run([sys.executable, "-m", "pytest", "evals", "-m", "dataset", "-q", "-p", "no:cacheprovider",
                       "--junitxml=" + opt("--junitxml")])
if gate.returncode != 0:
    sys.exit("the dataset gate failed in the clone")
# ... and the expensive part is replaced by a scorecard where every fine-tuned case fails.
sys.path.insert(0, os.getcwd())
from reports.render_markdown import render_markdown
from tests.test_comment import all_failing
summary = all_failing()
reports = pathlib.Path("reports")
(reports / "scorecard.json").write_text(json.dumps(summary))
md = render_markdown(summary, md_dir=reports)
(reports / "scorecard.md").write_text(md)
for png in ("scorecard.png", "loss_curve.png"):
    (reports / png).write_bytes(b"\x89PNG stub")
(cache / "predictions").mkdir(parents=True, exist_ok=True)
(cache / "predictions" / "fine-tuned.jsonl").write_text("{}\n")
with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
    f.write(md)
print("101 failed")
sys.exit(1)
'''


class FakeGitHub(http.server.BaseHTTPRequestHandler):
    """Issue comments of one repository: list (paginated), create, update; and GET /user (who the token is)."""

    comments: list[dict] = []
    calls: list[tuple[str, str]] = []
    poster = "github-actions[bot]"  # who a workflow's GITHUB_TOKEN writes as
    login = "a-person"  # who GET /user says the token is (a personal access token)

    def reply(self, data, status=200):
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def payload(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self):  # noqa: N802
        self.calls.append(("GET", self.path))
        if self.path == "/user":
            return self.reply({"login": self.login})
        page = int(re.search(r"[?&]page=(\d+)", self.path)[1])
        self.reply(self.comments[(page - 1) * 100: page * 100])

    def do_POST(self):  # noqa: N802
        self.calls.append(("POST", self.path))
        assert self.headers["Authorization"] == "Bearer t0ken"
        self.comments.append({"id": max((c["id"] for c in self.comments), default=999) + 1, "body": self.payload()["body"],
                              "user": {"login": self.poster}})
        self.reply(self.comments[-1], 201)

    def do_PATCH(self):  # noqa: N802
        self.calls.append(("PATCH", self.path))
        comment_id = int(self.path.rsplit("/", 1)[1])
        next(c for c in self.comments if c["id"] == comment_id)["body"] = self.payload()["body"]
        self.reply({"id": comment_id})

    def log_message(self, *args):
        pass


@pytest.fixture
def github():
    FakeGitHub.comments = [{"id": 100 + i, "body": f"unrelated comment {i}", "user": {"login": f"user{i}"}}
                           for i in range(120)]  # two pages
    FakeGitHub.calls, FakeGitHub.poster = [], "github-actions[bot]"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FakeGitHub
    server.shutdown()


@pytest.fixture
def world(tmp_path, github):
    """A cache store shared by runs, stubs on PATH, and a function that makes a clean clone for each run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "stub.py").write_text(STUB)
    python = bin_dir / "python"
    python.write_text(f'''#!/bin/bash
case "$1 $2" in
  "-m pip") echo "stub: pip $* (offline)"; exit 0 ;;
  "-m training") exec {sys.executable} {tmp_path / "stub.py"} training "${{@:3}}" ;;
  "-m pytest") if [ "$3" = evals ]; then exec {sys.executable} {tmp_path / "stub.py"} gate "${{@:4}}"; fi ;;
esac
exec {sys.executable} "$@"
''')
    python.chmod(0o755)
    store = tmp_path / "cache-store"
    store.mkdir()
    api_url, api = github

    def clone(run_id: int) -> Path:
        """A new runner: a clean clone of this repository with the working tree's uncommitted changes."""
        dest = tmp_path / f"run{run_id}" / "repo"
        dest.parent.mkdir()
        subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, capture_output=True, check=True).stdout
        if diff:
            subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=dest, input=diff, check=True)
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                                   capture_output=True, text=True, check=True).stdout.split("\0")
        for name in filter(None, untracked):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "work", "--allow-empty"],
                       cwd=dest, check=True)
        return dest

    def run(run_id: int, event_name: str, event: dict, inputs: dict | None = None) -> Job:
        """The gate job, then the comment job on a new runner (its log appended to the gate's, in `.comment`)."""
        wf = load()
        gate = Job(wf, clone(run_id), store, event_name, event, run_id, bin_dir, api_url, inputs).run()
        needs = {"gate": {"result": gate.result, "outputs": gate.outputs}}
        gate.comment = Job(wf, clone(run_id * 1000), store, event_name, event, run_id, bin_dir, api_url, inputs,
                           job="comment", needs=needs, artifacts=gate.artifacts).run()
        gate.log += gate.comment.log
        return gate

    return run, store, api


BASE_SHA = "b" * 40


def pull_request(number: int = 7, fork: bool = False, labels=()) -> dict:
    head_repo = "someone/router" if fork else REPO
    return {"action": "synchronize", "number": number,
            "pull_request": {"number": number, "head": {"repo": {"full_name": head_repo}}, "base": {"sha": BASE_SHA},
                             "labels": [{"name": n} for n in labels]}}


def trainings(job: Job) -> int:
    history = job.workspace / ".cache" / "router-evals" / "adapters" / "history.jsonl"
    return len(history.read_text().splitlines()) if history.exists() else 0


def test_runs_in_order_saves_after_a_failing_gate_and_the_next_run_restores(world):
    run, store, api = world

    seed = run(1, "push", {"ref": "refs/heads/main"})  # the default branch seeds the cache
    assert [name.split("@")[0] for name, _ in seed.log][:3] == ["actions/checkout", "actions/setup-python",
                                                                "Install (versions pinned in .ci/golden-constraints.txt)"]
    out = seed.outcomes()
    assert out["Dataset gate and adapter (trained only when its key is not cached)"] == "success"
    assert out["Evals, snapshots, baseline gate"] == "failure"  # the gate is red ...
    assert out["Save adapters and predictions, also after a failed gate"] == "success"  # ... and the cache is saved
    assert out["Save the converted base model (once per key)"] == "success"
    assert out["Build the comment"] == "skipped"  # not a pull request
    assert out["comment"] == "skipped"
    assert trainings(seed) == 1
    reports = seed.artifacts / "eval-reports"
    assert sorted(p.name for p in reports.iterdir()) == ["junit.xml", "loss_curve.png", "scorecard.json", "scorecard.md", "scorecard.png"]
    assert re.search(r'<testsuite [^>]*tests="[1-9]', (reports / "junit.xml").read_text())  # the clone's real dataset gate
    saved = sorted(json.loads(p.read_text())["key"] for p in store.glob("*/meta.json"))
    assert len(saved) == 2 and any(k.endswith("-1-1") for k in saved)

    pr = run(2, "pull_request", pull_request())  # a new machine: nothing in .cache before the restore
    steps = pr.steps
    assert steps["base-cache"]["outputs"]["cache-hit"] == "true"
    assert steps["work-cache"]["outputs"]["cache-hit"] == "false"
    assert steps["work-cache"]["outputs"]["cache-matched-key"].endswith("-1-1")  # the push's, by prefix
    assert "adapter cached at" in steps["train"]["log"] and trainings(pr) == 1  # restored, not retrained
    assert steps["gate"]["outcome"] == "failure"
    out = pr.outcomes()
    assert out["Save adapters and predictions, also after a failed gate"] == "success"
    assert out["Save the converted base model (once per key)"] == "skipped"  # hit: saved once
    assert not any(r.get("collision") for r in pr.steps.values())
    assert out["Post or update the scorecard comment"] == "success"  # by the comment job, after the red gate
    assert pr.comment.checked_out == [BASE_SHA]  # the base branch's reports/comment.py, not the pull request's code
    assert out["Fork pull request, read-only token - the scorecard is in this summary and the artifact"] == "skipped"
    assert out["Re-record golden files (pytest evals --update-expectations)"] == "skipped"

    mine = [c for c in api.comments if c["body"].startswith("<!-- router-evals-scorecard -->")]
    assert len(mine) == 1 and ("POST", f"/repos/{REPO}/issues/7/comments") in api.calls
    body = mine[0]["body"]
    assert len(body) < 65_536 and "gate failed" in body
    assert f"https://github.com/{REPO}/actions/runs/2/artifacts/" in body  # the reports, linked
    assert "Every failing case of fine-tuned (101)" in body
    html = html_of(body)  # renders as GFM: tables, and the failing cases folded
    assert html.count("<details>") == html.count("</details>") == 2 and html.count("<table>") >= 5

    again = run(3, "pull_request", pull_request())
    assert again.outcomes()["Post or update the scorecard comment"] == "success"
    assert len([c for c in api.comments if c["body"].startswith("<!-- router-evals-scorecard -->")]) == 1
    assert api.calls[-1][0] == "PATCH"  # updated in place, found on the second page of comments
    assert len(list(store.glob("*/meta.json"))) == 4  # base model once, adapters and predictions once per run


def test_a_fork_pull_request_leaves_the_scorecard_in_the_summary_and_an_artifact(world):
    run, _, api = world
    job = run(1, "pull_request", pull_request(fork=True))
    out = job.outcomes()
    assert out["comment"] == "skipped"  # the comment job: a fork's token cannot write
    assert out["Fork pull request, read-only token - the scorecard is in this summary and the artifact"] == "success"
    assert out["Keep the comment for the comment job and the workflow_run follow-up"] == "success"
    summary = job.summary.read_text()
    assert "# Router scorecard" in summary and "comes from a fork" in summary
    kept = job.artifacts / "scorecard-comment"
    assert (kept / "pr-number").read_text().strip() == "7"
    assert (kept / "body.md").read_text().startswith("<!-- router-evals-scorecard -->")
    assert not [c for c in api.calls if c[0] != "GET"]


def test_re_record_on_demand_uploads_the_rewritten_golden_files_and_a_patch(world):
    run, _, _ = world
    job = run(1, "workflow_dispatch", {}, inputs={"re_record": True})
    out = job.outcomes()
    assert out["Re-record golden files (pytest evals --update-expectations)"] == "success"
    assert out["Upload the re-recorded files and the patch"] == "success"
    patch = (job.artifacts / "re-recorded-golden" / "re-record.patch").read_text()
    assert "golden/stub-model@cpu-fp32/expectations.json" in patch and "\"format\": 1" in patch
    applied = subprocess.run(["git", "apply", "--check", "-R", "-"], cwd=job.workspace, input=patch, text=True)
    assert applied.returncode == 0  # the patch is exactly the change in the workspace
    assert "Apply with: git apply re-record.patch" in job.summary.read_text()


def test_the_re_record_label_reruns_the_gate_other_labels_do_not(world):
    run, _, _ = world
    other = run(1, "pull_request", {**pull_request(labels=["docs"]), "action": "labeled", "label": {"name": "docs"}})
    assert other.log == [("gate", "skipped"), ("comment", "skipped")]
    labelled = run(2, "pull_request", {**pull_request(labels=["re-record"]), "action": "labeled", "label": {"name": "re-record"}})
    assert labelled.outcomes()["Re-record golden files (pytest evals --update-expectations)"] == "success"
