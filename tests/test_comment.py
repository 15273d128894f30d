"""The pull-request comment body: under GitHub's size limit however many cases fail, and valid GFM."""

from __future__ import annotations

import json
import re

import pytest

from reports.comment import LIMIT, MARKER, main, render
from reports.summary import summarize

EXPECTED = {"tier": "Trusted Technical Builder", "risk": "high",
            "recommended_platform": "Databricks app + Salesforce integration", "needs_review": True}
RAW = 'Sure | here is <b>my</b> answer ``` {"tier": "x"} ' + "é" * 400  # markdown, HTML and multi-byte text from the model


def record(candidate, case_id, *, suite="policy", split="test", group=None, right=False, got=True):
    decision = dict(EXPECTED) if right else {**EXPECTED, "risk": "low", "recommended_platform": "Glean | *Tableau*"}
    scores = {f: right or f in ("tier", "needs_review") for f in EXPECTED}
    return {"suite": suite, "candidate": candidate, "case_id": case_id, "split": split, "rules": ["salesforce-integration"],
            "bias_group": group, "expected": dict(EXPECTED), "got": decision if got else None,
            "parse_kind": "ok" if got else "truncated", "raw": RAW,
            "scores": {"json_valid": got, "schema_valid": got, **scores, "exact": right}}


def all_failing(n_test: int = 52, n_bias: int = 49) -> dict:
    """A scorecard where every fine-tuned case fails (a third without JSON), as scorecard.json holds it."""
    records = []
    for i in range(n_test):
        for cand in ("base", "few-shot", "fine-tuned"):
            records.append(record(cand, f"case_{i:04d}", got=i % 3 != 0, right=cand == "few-shot" and i % 2 == 0))
    for i in range(n_bias):
        records.append(record("fine-tuned", f"bias_{i:04d}", suite="bias", split="bias", group=f"group-{i % 7}"))
    facts = {"base_model": "smollm2-135m-instruct", "device": "cpu-fp32", "phases": {"train_s": 1.0},
             "adapter": {"key": "ab" * 32, "trained_now": True, "loss_curve": "/tmp/x/loss_curve.png"}}
    baseline = None  # no gate verdict in this run
    return json.loads(json.dumps(summarize(records, facts, baseline), default=str))  # through JSON, as the workflow reads it


def html_of(md: str) -> str:
    """GFM as GitHub renders a comment: raw HTML such as <details> kept (GitHub allows it; cmarkgfm drops it unless told)."""
    import cmarkgfm
    from cmarkgfm.cmark import Options

    return cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)


def failing_table_rows(html: str) -> int:
    details = html[html.index("Every failing case"):]
    return details[: details.index("</details>")].count("<tr>") - 1  # less the header row


def test_every_fine_tuned_case_failing_fits_and_renders():
    summary = all_failing()
    body = render(summary, outcome="failure", run_url="https://github.com/o/r/actions/runs/1",
                  artifact_url="https://github.com/o/r/actions/runs/1/artifacts/2")
    assert body.startswith(MARKER + "\n")
    assert len(body) < LIMIT and len(body.encode("utf-8")) <= LIMIT
    html = html_of(body)
    assert failing_table_rows(html) == 52 + 49  # all of them: no truncation needed here
    assert "<img" not in html and "loss_curve.png" not in body  # no broken relative images or links
    assert '<a href="https://github.com/o/r/actions/runs/1/artifacts/2">' in html
    assert html.count("<details>") == html.count("</details>") == 2
    assert "<b>my</b>" not in html  # model text is escaped, not rendered as HTML
    assert "gate failed" in html


@pytest.mark.parametrize("n_test", [500, 3000])
def test_too_many_failures_are_cut_with_a_note_and_a_link(n_test):
    summary = all_failing(n_test=n_test)
    body = render(summary, outcome="failure", artifact_url="https://github.com/o/r/actions/runs/1/artifacts/2")
    assert len(body.encode("utf-8")) <= LIMIT
    html = html_of(body)
    shown = failing_table_rows(html)
    assert 0 < shown < n_test + 49
    assert f"{n_test + 49 - shown} more failing cases not shown (comment size limit)" in body
    assert html.count("<details>") == html.count("</details>")
    assert re.search(r"<table>.*Run.*</table>", html, re.S)  # the run facts after the cut table are still there


def test_a_body_still_too_long_is_cut_at_a_line_with_a_note():
    body = render(all_failing(n_test=200), limit=3000, artifact_url="https://example.org/a")
    assert len(body.encode("utf-8")) <= 3000
    assert "Cut here" in body and body.count("<details>") == body.count("</details>")


def test_the_command_writes_the_body_and_says_when_there_is_no_scorecard(tmp_path, capsys):
    scorecard = tmp_path / "scorecard.json"
    scorecard.write_text(json.dumps(all_failing()))
    assert main(["--scorecard", str(scorecard), "--out", str(tmp_path / "c.md"), "--outcome", "failure", "--run-url", ""]) == 0
    assert (tmp_path / "c.md").read_text().startswith(MARKER)
    assert main(["--scorecard", str(tmp_path / "missing.json"), "--out", str(tmp_path / "m.md"), "--outcome", "failure"]) == 0
    assert "No scorecard was written" in (tmp_path / "m.md").read_text()
    assert "characters" in capsys.readouterr().out


def test_the_comment_leads_with_fine_tuned_against_the_classical_floor_and_the_record():
    records = [record(cand, f"case_{i}", right=right)
               for i in range(4) for cand, right in (("fine-tuned", i < 3), ("classical", i < 2), ("base", False))]
    facts = {"record": {"line": "record: m@cpu-bf16, judged as drift (no record for m@cpu-fp32; record one on this "
                                "machine with `pytest evals --update-expectations`)"}}
    summary = json.loads(json.dumps(summarize(records, facts, None), default=str))
    lines = render(summary, outcome="success").split("\n\n")
    assert lines[1] == "## Router scorecard: gate passed"
    assert lines[2] == ("**fine-tuned 75.0% exact on `test`** vs classical 50.0%: training beats the classical floor "
                        "on every seed; best prompt-only `base` 0.0%.")
    assert lines[3].startswith("record: m@cpu-bf16, judged as drift (no record for m@cpu-fp32")
