"""The pull-request comment: reports/scorecard.json -> one markdown body under GitHub's size limit.

    python -m reports.comment --scorecard reports/scorecard.json --out reports/comment.md \
        --outcome failure --run-url URL --artifact-url URL

What differs from reports/scorecard.md (which stays the full report, in the artifact and the step summary):
- no images: a figure uploaded as an artifact has no URL a comment can embed (artifacts are zip files
  behind a login), so the body links the run's artifact instead and says so;
- the per-rule table and every failing case are folded in <details>;
- the body stays under GitHub's 65,536-character limit (measured here in UTF-8 bytes, which is never
  less than characters): failing cases are dropped from the end first, with a note saying how many and
  where the full list is; if the rest is still too long, it is cut at a line and the note says so.
The first line is a hidden marker: `--post PR` finds the comment that starts with it and was written by the
posting account (`--author`: github-actions[bot], the account of the workflow's GITHUB_TOKEN, or @me: the login
of a personal access token's user, asked of GET /user, which GITHUB_TOKEN may not call) and updates it, or creates one, so a pull request has one scorecard
comment however often it is pushed. A comment someone else wrote is never edited, marker or not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MARKER = "<!-- router-evals-scorecard -->"
ACTIONS_BOT = "github-actions[bot]"  # who a workflow's GITHUB_TOKEN comments as (it cannot read GET /user)
LIMIT = 65_536
NO_IMAGES = "Figures (field accuracy, loss curve) are in the run's artifact: files uploaded as artifacts cannot be shown inline in a comment."


def fits(body: str, limit: int) -> bool:
    return len(body.encode("utf-8")) <= limit


def links(run_url: str | None, artifact_url: str | None) -> str:
    parts = []
    if artifact_url:
        parts.append(f"[full scorecard, figures and JUnit XML (artifact)]({artifact_url})")
    if run_url:
        parts.append(f"[workflow run]({run_url})")
    return " · ".join(parts) or "the full scorecard is reports/scorecard.md in the run's artifact"


def verdict(outcome: str | None) -> str:
    return {"success": "gate passed", "failure": "gate failed", "cancelled": "gate cancelled"}.get(outcome or "", "gate finished")


def folded(summary_line: str, content: str) -> str:
    """A GFM-safe <details>: blank lines around the markdown inside, or GitHub shows it as plain text."""
    return f"<details><summary>{summary_line}</summary>\n\n{content}\n\n</details>"


def failing_rows(summary: dict) -> list[list[str]]:
    from reports.render_markdown import cell, decision_text, failure_where, text_cell

    rows = []
    for f in summary["failures"]["cases"]:
        where = failure_where(f)
        got = decision_text(f["got"], f["fields"]) if f["got"] is not None else "no JSON: " + text_cell(f["raw"], 60)
        parse = "" if f["parse_kind"] == "ok" else f["parse_kind"]
        rows.append([cell(f["case_id"]), cell(where), ", ".join(f["fields"]), decision_text(f["expected"], f["fields"]), got, parse])
    return rows


def head_parts(summary: dict, outcome: str | None, run_url: str | None, artifact_url: str | None) -> list[str]:
    from reports import render_markdown as sc

    parts = [MARKER, f"## Router scorecard: {verdict(outcome)}", *[sc.cell(line) for line in sc.lead_lines(summary.get("lead"))],
             f"{links(run_url, artifact_url)}. {NO_IMAGES}"]
    parts += sc.accuracy_section(summary)
    parts += sc.paired_section(summary)
    parts += sc.cost_section(summary.get("cost") or {}, (summary.get("run") or {}).get("device"))
    parts += sc.gate_section(summary.get("gate"))
    rules = sc.group_section("Exact match per rule (policy cases)", "rule", summary["rules"], summary["candidates"])
    parts.append(folded("Exact match per rule", "\n\n".join(rules[1:])))
    parts += sc.group_section("Bias checks (pass = all four fields right)", "bias check", summary["bias"], summary["candidates"])
    parts += sc.failures_section({**summary["failures"], "cases": []}, [])  # the counts table only
    return parts


def tail_parts(summary: dict) -> list[str]:
    from reports import render_markdown as sc

    facts = json.loads(json.dumps(summary.get("run") or {}))  # a copy
    (facts.get("adapter") or {}).pop("loss_curve", None)  # a relative link would be broken in a comment
    return sc.run_section(facts, None)


def render(summary: dict, *, outcome: str | None = None, run_url: str | None = None,
           artifact_url: str | None = None, limit: int = LIMIT) -> str:
    """The comment body for a scorecard summary (scorecard.json), at most `limit` UTF-8 bytes."""
    from reports.render_markdown import table
    from reports.summary import FINE_TUNED

    head, tail = head_parts(summary, outcome, run_url, artifact_url), tail_parts(summary)
    rows = failing_rows(summary)
    headers = ["case", "where", "fields wrong", "expected", "got", "parse"]

    def body(shown: int) -> str:
        cases = []
        if rows:
            left_out = len(rows) - shown
            note = (f"\n\n{left_out} more failing case{'s' if left_out != 1 else ''} not shown (comment size limit): "
                    f"{links(None, artifact_url)}." if left_out else "")
            content = (table(headers, rows[:shown]) if shown else "") + note
            cases = [folded(f"Every failing case of {FINE_TUNED} ({len(rows)})", content.strip())]
        return "\n\n".join([*head, *cases, *tail]) + "\n"

    low, high = 0, len(rows)  # the most rows that fit, by bisection: each body is rendered whole
    if fits(body(high), limit):
        return body(high)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(body(mid), limit) else (low, mid - 1)
    out = body(low)
    return out if fits(out, limit) else cut(out, limit, artifact_url)


def cut(text: str, limit: int, artifact_url: str | None) -> str:
    """The first lines of `text` that fit with a closing note; an open <details> is closed."""
    note = f"\n\n</details>\n\n**Cut here: the scorecard is longer than a comment may be.** {links(None, artifact_url)}.\n"
    room = limit - len(note.encode("utf-8"))
    kept, size = [], 0
    for line in text.splitlines(keepends=True):
        size += len(line.encode("utf-8"))
        if size > room:
            break
        kept.append(line)
    head = "".join(kept)
    if head.count("<details>") <= head.count("</details>"):
        note = note.replace("\n\n</details>", "", 1)
    return head + note


def render_missing(outcome: str | None, run_url: str | None, artifact_url: str | None) -> str:
    return (f"{MARKER}\n\n## Router scorecard: {verdict(outcome)}\n\nNo scorecard was written: the run stopped before "
            f"anything was scored (for example the dataset gate failed). {links(run_url, artifact_url)}.\n")


def post(body: str, repository: str, pr: int, token: str, api_url: str = "https://api.github.com",
         author: str = ACTIONS_BOT) -> str:
    """Create the PR's scorecard comment, or update the one that starts with MARKER and was written by `author`
    (@me: the token's own login, from GET /user); returns "created" or "updated"."""
    import urllib.request

    def call(method: str, url: str, data: dict | None = None):
        request = urllib.request.Request(url, method=method, data=None if data is None else json.dumps(data).encode(),
                                         headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                                                  "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    root = api_url.rstrip("/")
    if author == "@me":
        author = call("GET", f"{root}/user")["login"]
    base = f"{root}/repos/{repository}"
    page = 1
    while True:
        comments = call("GET", f"{base}/issues/{pr}/comments?per_page=100&page={page}")
        mine = next((c for c in comments if (c.get("body") or "").startswith(MARKER)
                     and ((c.get("user") or {}).get("login") or "").lower() == author.lower()), None)
        if mine is not None:
            call("PATCH", f"{base}/issues/comments/{mine['id']}", {"body": body})
            return "updated"
        if len(comments) < 100:
            break
        page += 1
    call("POST", f"{base}/issues/{pr}/comments", {"body": body})
    return "created"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.comment", description=__doc__.splitlines()[0])
    p.add_argument("--scorecard", type=Path, default=Path("reports/scorecard.json"), help="the scorecard's JSON summary")
    p.add_argument("--out", type=Path, default=Path("reports/comment.md"), help="where to write the body")
    p.add_argument("--outcome", default=None, help="the gate step's outcome: success, failure, cancelled")
    p.add_argument("--run-url", default=None, help="the workflow run's page")
    p.add_argument("--artifact-url", default=None, help="the uploaded reports artifact's page")
    p.add_argument("--limit", type=int, default=LIMIT, help=f"size limit in UTF-8 bytes (default {LIMIT}, GitHub's)")
    p.add_argument("--body", type=Path, default=None,
                   help="use this already built body (cut to --limit) instead of building one from --scorecard")
    p.add_argument("--post", type=int, metavar="PR", default=None,
                   help="also create or update the comment on this pull request (needs GITHUB_TOKEN with pull-requests: write, "
                        "GITHUB_REPOSITORY, and GITHUB_API_URL on GitHub Enterprise)")
    p.add_argument("--author", default=ACTIONS_BOT,
                   help=f"with --post, update only a comment this account wrote (default {ACTIONS_BOT}, GITHUB_TOKEN's; "
                        "@me: the token's own login, for a personal access token; a GitHub App's token writes as "
                        "<app>[bot])")
    a = p.parse_args(argv)
    if a.body is not None:
        body = a.body.read_text(encoding="utf-8")
        body = body if fits(body, a.limit) else cut(body, a.limit, a.artifact_url or None)
    elif a.scorecard.is_file():
        body = render(json.loads(a.scorecard.read_text(encoding="utf-8")), outcome=a.outcome,
                      run_url=a.run_url or None, artifact_url=a.artifact_url or None, limit=a.limit)
    else:
        body = render_missing(a.outcome, a.run_url or None, a.artifact_url or None)
    if a.out != a.body:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(body, encoding="utf-8")
    print(f"{a.out}: {len(body):,} characters, {len(body.encode('utf-8')):,} bytes (limit {a.limit:,})")
    if a.post is not None:
        import os

        done = post(body, os.environ["GITHUB_REPOSITORY"], a.post, os.environ["GITHUB_TOKEN"],
                    os.environ.get("GITHUB_API_URL", "https://api.github.com"), a.author)
        print(f"comment {done} on pull request #{a.post}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
