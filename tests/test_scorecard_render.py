"""The scorecard's pure parts: summary numbers, GFM that renders as tables, the chart, the terminal lines."""

from __future__ import annotations

import re

import pytest

from reports.render_markdown import render_markdown
from reports.render_png import render_png
from reports.render_text import render_text
from reports.summary import merge_facts, summarize

EXPECTED = {"tier": "Trusted Technical Builder", "risk": "high",
            "recommended_platform": "Databricks app + Salesforce integration", "needs_review": True}
FIELDS = tuple(EXPECTED)


def record(candidate, case_id, got, *, suite="policy", split="test", bias_group=None, rules=("custom-build",), kind="ok", raw="{}"):
    """A router_record as the eval tests make it; scores follow from got."""
    right = {f: got is not None and got.get(f) == EXPECTED[f] for f in FIELDS}
    return {"suite": suite, "candidate": candidate, "case_id": case_id, "split": split, "rules": list(rules),
            "bias_group": bias_group, "expected": dict(EXPECTED), "got": got, "parse_kind": kind, "raw": raw,
            "scores": {"json_valid": got is not None, "schema_valid": got is not None and kind == "ok", **right,
                       "exact": all(right.values())}}


def wrong_risk():
    return {**EXPECTED, "risk": "low"}


def records():
    """12 test cases: fine-tuned right on 11, few-shot on 6, base on 3 (one no-JSON); two bias groups."""
    out = []
    for i in range(12):
        cid = f"t{i:02d}"
        rules = ("custom-build",) if i % 2 else ("custom-build", "bias-writeback-no-crm")
        out.append(record("fine-tuned", cid, EXPECTED if i < 11 else wrong_risk(), rules=rules))
        out.append(record("few-shot", cid, EXPECTED if i < 6 else wrong_risk(), rules=rules))
        if i == 11:
            out.append(record("base", cid, None, kind="no_json", raw="Sure | here is <b>my</b> answer", rules=rules))
        else:
            out.append(record("base", cid, EXPECTED if i < 3 else wrong_risk(), rules=rules))
    for cand, passes in (("fine-tuned", 3), ("few-shot", 2), ("base", 1)):
        for j in range(3):
            group = "swap-names" if j < 2 else "injection"
            out.append(record(cand, f"b{j}", EXPECTED if j < passes else wrong_risk(), suite="bias", split="bias", bias_group=group))
    return out


FACTS = {
    "base_model": "smollm2-135m-instruct", "base_identity": "gguf-sha256:0123456789abcdef", "device": "cpu-fp32",
    "adapters": {"0": {"key": "ab12cd34ef56ab12cd34", "trained_now": True, "path": "/tmp/cache/adapter", "wall_time_s": 312.5,
                       "trainable_params": 4884480, "total_params": 139399488, "final_train_loss": 0.12, "final_val_loss": 0.15,
                       "loss_curve": "/tmp/cache/adapter/loss_curve.png", "weights": "sha256:0011223344556677889900"}},
    "loss_curve": "/tmp/cache/adapter/loss_curve.png",
    "phases": {"load_model_s": 12.1, "train_s": 300.0, "predict_base_s": 40.2},
}
GATE = {"ok": True, "headline": "fixed 1, broken 0, unstable 0, unchanged 11, new 0, p = 1: no regression",
        "counts": {"fixed": 1, "broken": 0, "unchanged": 11, "unstable": 0, "new": 0}, "p": 1.0,
        "changed": {"fixed": [{"case_id": "t05", "where": "test.jsonl:6", "rules": ["custom-build"], "expected": EXPECTED,
                               "baseline": {"seed-0": {"parse": "ok", **EXPECTED, "risk": "low"}},
                               "current": {"seed-0": {"parse": "ok", **EXPECTED}}}], "broken": [], "unstable": [], "new": []},
        "band_drops": [], "must_pass_breaks": [], "must_pass_known": [], "bands": {},
        "settings": {"alpha": 0.05, "field_margin": 0.05, "rule_margin": 0.25}, "runs": {"baseline": ["seed-0"], "current": ["seed-0"]}}


@pytest.fixture
def summary():
    return summarize(records(), FACTS, GATE)


def html_of(md: str) -> str:
    import cmarkgfm

    return cmarkgfm.github_flavored_markdown_to_html(md)


def test_summary_counts_policy_records_per_split_and_candidate(summary):
    acc = summary["accuracy"]
    assert list(acc) == ["test"]
    assert list(acc["test"]) == ["base", "few-shot", "fine-tuned"]
    assert {c: (t["exact"]["k"], t["exact"]["n"]) for c, t in acc["test"].items()} == {
        "base": (3, 12), "few-shot": (6, 12), "fine-tuned": (11, 12)}
    assert acc["test"]["base"]["json_valid"]["k"] == 11
    assert acc["test"]["fine-tuned"]["tier"]["k"] == 12


def test_summary_pairs_fine_tuned_with_each_other_candidate(summary):
    by_other = {t["other"]: t for t in summary["paired"]}
    assert (by_other["base"]["only_fine_tuned"], by_other["base"]["only_other"]) == (8, 0)
    assert by_other["base"]["p"] == pytest.approx(2 / 2**8)
    assert by_other["base"]["significant"]
    assert by_other["few-shot"]["p"] == pytest.approx(2 / 2**5)
    assert not by_other["few-shot"]["significant"]


def test_summary_groups_by_rule_and_bias_check(summary):
    assert summary["rules"]["bias-writeback-no-crm"]["fine-tuned"] == {"k": 6, "n": 6}
    assert summary["rules"]["custom-build"]["base"] == {"k": 3, "n": 12}
    assert summary["bias"]["swap-names"] == {"fine-tuned": {"k": 2, "n": 2}, "few-shot": {"k": 2, "n": 2}, "base": {"k": 1, "n": 2}}
    assert summary["bias"]["injection"]["fine-tuned"] == {"k": 1, "n": 1}


def test_summary_lists_fine_tuned_failures_and_counts_the_rest(summary):
    fails = summary["failures"]
    assert [(f["case_id"], f["fields"]) for f in fails["cases"]] == [("t11", ["risk"])]
    assert fails["counts"]["base"] == {"policy": {"failed": 9, "n": 12}, "bias": {"failed": 2, "n": 3}, "parse_kinds": {"no_json": 1}}


def test_markdown_says_the_numbers(summary):
    md = render_markdown(summary, md_dir="/tmp/cache")
    assert "11/12 (91.7%) [64.6–98.5]" in md
    assert ("fine-tuned vs base: 11/12 vs 3/12 exact; 8 cases only fine-tuned got right, 0 only base; "
            "p = 0.0078 (significant at 0.05)") in md
    assert "p = 0.0625 (not significant at 0.05)" in md
    assert "**PASS**: fixed 1, broken 0, unstable 0, unchanged 11, new 0, p = 1: no regression" in md
    assert "fixed: t05 (custom-build)" in md and "baseline seed-0: risk='low' \\| now seed-0: right" in md
    assert "trained now" in md and "`ab12cd34ef56`" in md and "3.50%" in md
    assert "[loss curve](adapter/loss_curve.png)" in md  # relative to the markdown's folder
    assert "![field accuracy per candidate](scorecard.png)" in md
    assert "| t11 " in md and "risk: high" in md and "risk: low" in md


def test_markdown_renders_every_table_as_gfm(summary):
    md = render_markdown(summary)
    html = html_of(md)
    delimiter_rows = [line for line in md.splitlines() if re.match(r"^\|[-|: ]+\|$", line)]
    # accuracy, cost, rules, bias, failure counts, fine-tuned failures, adapters, model, phases
    assert len(delimiter_rows) == 9
    assert html.count("<table>") == 9
    assert "|---" not in html and "|-" not in html


def test_pipes_and_html_in_cells_are_escaped():
    recs = records()
    for r in recs:
        if r["candidate"] == "fine-tuned" and r["case_id"] == "t11":
            r.update(got=None, parse_kind="no_json", raw="a | b <script>x</script> `tick`",
                     scores={**r["scores"], "json_valid": False, "tier": False, "exact": False})
    recs.append(record("fine-tuned", "t12", {**EXPECTED, "recommended_platform": "A | B"}))
    md = render_markdown(summarize(recs, {}, None))
    assert "A \\| B" in md and "a \\| b" in md
    html = html_of(md)
    assert "<script>" not in html
    for tbl in re.findall(r"<table>.*?</table>", html, re.S):
        widths = {len(re.findall(r"<t[hd]", row)) for row in re.findall(r"<tr>.*?</tr>", tbl, re.S)}
        assert len(widths) == 1, f"a row has a different number of cells:\n{tbl}"


def test_no_gate_and_no_fine_tuned_are_said_in_words():
    recs = [r for r in records() if r["candidate"] != "fine-tuned"]
    md = render_markdown(summarize(recs, {}, None))
    assert "The gate did not run" in md
    assert "No candidate named `fine-tuned` in this run: no paired test." in md
    assert "No adapter in this run." in md
    assert html_of(md).count("<table>") == 5  # accuracy, cost, rules, bias, failure counts


def test_seeds_show_mean_band_and_stability():
    recs = [r for r in records() if r["candidate"] == "fine-tuned" and r["suite"] == "policy"]
    second = [{**r, "run": "seed-1", "scores": {**r["scores"], "exact": r["case_id"] not in ("t10", "t11")}} for r in recs]
    summary = summarize([{**r, "run": "seed-0"} for r in recs] + second, {}, None)
    exact = summary["accuracy"]["test"]["fine-tuned"]["exact"]
    assert (exact["runs"], exact["min"], exact["max"]) == (2, 10 / 12, 11 / 12)
    assert summary["stability"]["fine-tuned"] == {"stable_right": 10, "stable_wrong": 1, "unstable": ["t10"], "n": 12}
    md = render_markdown(summary)
    assert "mean of 2 seeds (min–max 83.3%–91.7%" in md and "Unstable for `fine-tuned` (the seeds disagree): `t10`" in md


def test_merge_facts_later_wins_and_nested_dicts_merge_one_level():
    merged = merge_facts([
        {"device": "cpu", "phases": {"load_model_s": 1.0}, "adapter": {"key": "a", "trained_now": True}},
        {"device": "cuda", "phases": {"predict_base_s": 2.0}},
        {"phases": {"load_model_s": 3.0}, "adapter": {"trained_now": False}},
    ])
    assert merged == {"device": "cuda", "phases": {"load_model_s": 3.0, "predict_base_s": 2.0},
                      "adapter": {"key": "a", "trained_now": False}}


def test_summary_does_not_depend_on_record_order(summary):
    assert summarize(list(reversed(records())), FACTS, GATE) == summary


def test_png_is_a_png(summary):
    assert render_png(summary)[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_has_one_line_per_candidate_then_the_tests(summary):
    lines = render_text(summary)
    assert lines[0] == "fine-tuned 91.7% exact on test; best prompt-only few-shot 50.0%."
    assert lines[1].startswith("base       [test] exact 3/12 (25.0%) | json 91.7%")
    assert lines[3].startswith("fine-tuned [test] exact 11/12 (91.7%)")
    assert any("fine-tuned vs base [test]: +8/-0 cases, p = 0.0078 (significant)" in line for line in lines)
    assert lines[-1] == "bias pass: base 1/3, few-shot 2/3, fine-tuned 3/3"


def test_cost_table_per_candidate_relative_to_fine_tuned():
    """Prompt and generated tokens, latency, requests/s and device time per request, one row per (run, case): a
    bias record of the same prediction or a second record of one case does not count twice."""
    def costed(cand, cid, prompt, seconds, rows, run="main"):
        r = record(cand, cid, EXPECTED)
        r["run"], r["cost"] = run, {"prompt_tokens": prompt, "new_tokens": 40, "batch_seconds": seconds, "batch_rows": rows}
        return r

    recs = [costed("fine-tuned", f"t{i}", 60, 2.0, 4, run=f"seed-{s}") for i in range(4) for s in (0, 1)]
    recs += [costed("base", f"t{i}", 900 + i, 8.0, 4) for i in range(4)]
    recs += [costed("base", "t0", 900, 8.0, 4)]  # the same case again
    recs += [record("few-shot", f"t{i}", EXPECTED) for i in range(4)]  # records written before costs existed
    cost = summarize(recs, FACTS)["cost"]
    ft, base = cost["fine-tuned"], cost["base"]
    assert ft["requests"] == 8 and base["requests"] == 4
    assert base["prompt_tokens"] == {"mean": 901.5, "max": 903} and base["new_tokens"]["mean"] == 40
    assert base["latency_s"] == 8.0 and base["requests_per_s"] == pytest.approx(0.5) and ft["requests_per_s"] == pytest.approx(2.0)
    assert base["relative_cost"] == pytest.approx(4.0) and ft["relative_cost"] == pytest.approx(1.0)
    assert base["relative_tokens"] == pytest.approx(941.5 / 100)
    assert cost["few-shot"]["timed"] == 0 and cost["few-shot"]["relative_cost"] is None
    md = render_markdown(summarize(recs, FACTS))
    assert "## Cost per request on `cpu-fp32`" in md
    section = md.split("## Cost per request")[1].split("\n## ")[0]
    cells = {row[0]: row[1:] for line in section.splitlines() if line.startswith("| ")
             for row in [[c.strip() for c in line.strip("|").split("|")]]}
    assert cells["base"] == ["902", "903", "40.0", "8.00 s", "0.50", "4", "4.00×", "9.41×"]
    assert cells["few-shot"][:4] == ["—", "—", "—", "—"]  # no cost fields at all: nothing is made up
    assert any(line.startswith("device s per request: base 2.000 (4.00x)") for line in render_text(summarize(recs, FACTS)))


def test_the_lead_reads_fine_tuned_against_the_classical_floor_seed_by_seed():
    """The scorecard's first line: fine-tuned's exact match with its seed spread, against the classical candidate
    (how many seeds reach it) and the best prompt-only candidate (adapter variants such as +schema are not prompt-only)."""
    from reports.render_markdown import lead_lines
    from reports.summary import lead

    accuracy = {"test": {
        "fine-tuned": {"exact": {"rate": 0.9, "n_per_run": 10, "per_run": {"seed-0": 10, "seed-1": 8}}},
        "fine-tuned+schema": {"exact": {"rate": 0.95}}, "classical": {"exact": {"rate": 0.85}},
        "base": {"exact": {"rate": 0.2}}, "few-shot": {"exact": {"rate": 0.3}}}}
    got = lead(accuracy, {"record": {"line": "record: x@cpu-bf16, judged as drift"}})
    assert got["seeds"] == {"seed-0": 1.0, "seed-1": 0.8} and got["seeds_at_or_above_classical"] == 1
    assert got["best_prompt_only"] == "few-shot"
    lines = lead_lines(got)
    assert lines[0] == ("**fine-tuned 90.0% exact on `test`** (seeds 80.0%–100.0%, spread 20.0 points) vs classical 85.0%: "
                        "only 1 of 2 seed(s) reach the classical floor: training has not earned its cost; best prompt-only "
                        "`few-shot` 30.0%.")
    assert lines[1] == "record: x@cpu-bf16, judged as drift"
    accuracy["test"]["fine-tuned"]["exact"]["per_run"] = {"seed-0": 9, "seed-1": 9}
    assert "training beats the classical floor on every seed" in lead_lines(lead(accuracy, {}))[0]
