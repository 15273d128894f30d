"""The scorecard as GitHub-flavoured markdown (reports/scorecard.md), from summarize()'s dict; the cell and table
helpers here are shared by the pull-request comment (reports/comment.py)."""

from __future__ import annotations

import os

from reports.cost import REFERENCE as COST_REFERENCE
from reports.scoring import METRICS
from reports.summary import ALPHA, FINE_TUNED

PNG_NAME = "scorecard.png"


def cell(value) -> str:
    """A table cell: pipes escaped so GFM keeps the column, newlines flattened."""
    return " ".join(str(value).replace("\\", "\\\\").replace("|", "\\|").split())


def text_cell(value, limit: int = 80) -> str:
    """Model-made text in a cell: also escape what markdown or HTML would interpret."""
    s = " ".join(str(value).split())
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    for ch in "\\`*_[]<>~&!#":
        s = s.replace(ch, "\\" + ch)
    return s.replace("|", "\\|")


def table(headers: list[str], rows: list[list[str]]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def fmt_tally(t: dict) -> str:
    if t.get("runs", 1) > 1:
        return (f"{pct(t['rate'])} mean of {t['runs']} seeds (min–max {pct(t['min'])}–{pct(t['max'])}; "
                f"{'/'.join(str(k) for k in t['per_run'].values())} of {t['n_per_run']})")
    return f"{t['k']}/{t['n']} ({pct(t['rate'])}) [{t['low'] * 100:.1f}–{t['high'] * 100:.1f}]"


def paired_sentence(t: dict) -> str:
    verdict = "significant" if t["significant"] else "not significant"
    worse = ": fine-tuned is worse" if t["significant"] and t["only_other"] > t["only_fine_tuned"] else ""
    return (
        f"{FINE_TUNED} vs {t['other']}: {t['k']}/{t['n']} vs {t['other_k']}/{t['n']} exact; "
        f"{t['only_fine_tuned']} cases only {FINE_TUNED} got right, {t['only_other']} only {t['other']}; "
        f"p = {t['p']:.4f} ({verdict} at {ALPHA}{worse})"
    )


def decision_text(decision: dict | None, fields: list[str]) -> str:
    if decision is None:
        return "—"
    return "; ".join(f"{f}: {text_cell(decision.get(f, '(missing)'), 60)}" for f in fields)


def render_markdown(summary: dict, md_dir: str | os.PathLike | None = None) -> str:
    """GitHub-flavoured markdown. Links (chart, loss curve) are relative to md_dir, where the .md file lives."""
    parts = ["# Router scorecard", *[cell(line) for line in lead_lines(summary.get("lead"))],
             f"![field accuracy per candidate]({PNG_NAME})"]
    parts += gate_section(summary.get("gate"))
    parts += accuracy_section(summary)
    parts += stability_section(summary.get("stability") or {})
    parts += paired_section(summary)
    parts += cost_section(summary.get("cost") or {}, (summary.get("run") or {}).get("device"))
    parts += group_section("Exact match per rule (policy cases)", "rule", summary["rules"], summary["candidates"])
    parts += group_section("Bias checks (pass = all four fields right)", "bias check", summary["bias"], summary["candidates"])
    parts += failures_section(summary["failures"], summary["candidates"])
    parts += run_section(summary["run"], md_dir)
    return "\n\n".join(parts) + "\n"


def lead_lines(lead: dict | None) -> list[str]:
    """The scorecard's first lines: did training earn its cost (fine-tuned against the classical floor and the best
    prompt-only candidate, with the seed spread), and which record the run was judged against."""
    if not lead:
        return []
    seeds = sorted(lead["seeds"].values())
    spread = f" (seeds {pct(seeds[0])}–{pct(seeds[-1])}, spread {100 * (seeds[-1] - seeds[0]):.1f} points)" if len(seeds) > 1 else ""
    line = f"**{FINE_TUNED} {pct(lead['fine_tuned'])} exact on `{lead['split']}`**{spread}"
    if lead["classical"] is not None:
        at = lead["seeds_at_or_above_classical"]
        verdict = ("training beats the classical floor on every seed" if at == len(seeds)
                   else f"only {at} of {len(seeds)} seed(s) reach the classical floor: training has not earned its cost")
        line += f" vs classical {pct(lead['classical'])}: {verdict}"
    if lead["best_prompt_only"] is not None:
        line += f"; best prompt-only `{lead['best_prompt_only']}` {pct(lead['best_prompt_only_rate'])}"
    return [line + "."] + ([lead["record"]] if lead.get("record") else [])


def accuracy_section(summary: dict) -> list[str]:
    out = []
    for split, by_cand in summary["accuracy"].items():
        cands = list(by_cand)
        rows = [[m] + [fmt_tally(by_cand[c][m]) for c in cands] for m in METRICS]
        out += [f"## Accuracy on split `{cell(split)}` (k/n, 95% Wilson interval)", table(["field", *map(cell, cands)], rows)]
    return out or ["## Accuracy", "No policy records in this run."]


def cost_section(cost: dict, runtime: str | None) -> list[str]:
    if not cost:
        return []

    def num(value, digits: int = 1, unit: str = "") -> str:
        return "—" if value is None else f"{value:,.{digits}f}{unit}"

    rows = [[cell(c), num(v["prompt_tokens"] and v["prompt_tokens"]["mean"], 0), num(v["prompt_tokens"] and v["prompt_tokens"]["max"], 0),
             num(v["new_tokens"] and v["new_tokens"]["mean"]), num(v["latency_s"], 2, " s"), num(v["requests_per_s"], 2),
             num(v["batch_rows"], 0), num(v["relative_cost"], 2, "×"), num(v["relative_tokens"], 2, "×")]
            for c, v in cost.items()]
    where = f" on `{cell(runtime)}`" if runtime else ""
    return [f"## Cost per request{where}",
            table(["candidate", "prompt tok (mean)", "prompt tok (max)", "generated tok (mean)", "latency",
                   "requests/s", "batch", f"device time vs {COST_REFERENCE}", f"tokens vs {COST_REFERENCE}"], rows),
            "Latency is the wall time of the batch a request ran in, requests/s is rows over batch time, both as "
            "measured when each prediction was generated (cached ones keep that run's time); relative cost is device "
            f"time per request over `{COST_REFERENCE}`'s."]


def paired_section(summary: dict) -> list[str]:
    head = f"## Is {FINE_TUNED} better? (exact match, same cases, exact McNemar test)"
    paired = summary["paired"]
    if paired is None:
        return [head, f"No candidate named `{FINE_TUNED}` in this run: no paired test."]
    if not paired:
        return [head, "No other candidate was scored on the same cases."]
    return [head, "\n".join(f"- `{cell(t['split'])}`: {cell(paired_sentence(t))}" for t in paired)]


def group_section(title: str, label: str, groups: dict, candidates: list[str]) -> list[str]:
    if not groups:
        return [f"## {title}", "None in this run."]
    rows = [
        [cell(group)] + [f"{v['k']}/{v['n']}" if (v := by_cand.get(c)) else "—" for c in candidates]
        for group, by_cand in groups.items()
    ]
    return [f"## {title}", table([label, *map(cell, candidates)], rows)]


def gate_section(gate: dict | None) -> list[str]:
    from reports.verdict_render import text

    head = "## Merge gate"
    if gate is None:
        return [head, "The gate did not run (`pytest evals -m gate`)."]
    lines = text(gate, limit=1000)
    return [head, f"**{'PASS' if gate['ok'] else 'FAIL'}**: {cell(gate['headline'])}",
            "\n".join(f"- {cell(line.strip())}" for line in lines[1:])]


def stability_section(stab: dict) -> list[str]:
    if not stab:
        return []
    rows = [[cell(c), str(v["stable_right"]), str(v["stable_wrong"]), str(len(v["unstable"])), str(v["n"])] for c, v in stab.items()]
    out = ["## Stability across seeds (exact match)", table(["candidate", "stable right", "stable wrong", "unstable", "cases"], rows)]
    for c, v in stab.items():
        if v["unstable"]:
            out.append(f"Unstable for `{cell(c)}` (the seeds disagree): " + ", ".join(f"`{cell(x)}`" for x in v["unstable"]))
    return out


def failures_section(fails: dict, candidates: list[str]) -> list[str]:
    def frac(c: dict, suite: str) -> str:
        return f"{c[suite]['failed']}/{c[suite]['n']}" if suite in c else "—"

    rows = [
        [cell(cand), frac(c, "policy"), frac(c, "bias"), ", ".join(f"{k}×{v}" for k, v in c["parse_kinds"].items()) or "—"]
        for cand, c in fails["counts"].items()
    ]
    out = ["## Failing cases", table(["candidate", "policy failed", "bias failed", "parse problems"], rows)]
    if FINE_TUNED not in candidates:
        return out
    if not fails["cases"]:
        return out + [f"### {FINE_TUNED}: no failing cases"]
    rows = []
    for f in fails["cases"]:
        where = failure_where(f) + ("" if f.get("run", "main") == "main" else f" ({f['run']})")
        got = decision_text(f["got"], f["fields"]) if f["got"] is not None else "no JSON: " + text_cell(f["raw"], 60)
        parse = "" if f["parse_kind"] == "ok" else f["parse_kind"]
        rows.append([cell(f["case_id"]), cell(where), ", ".join(f["fields"]), decision_text(f["expected"], f["fields"]), got, parse])
    return out + [f"### Every failing case of {FINE_TUNED}", table(["case", "where", "fields wrong", "expected", "got", "parse"], rows)]


def failure_where(f: dict) -> str:
    """Where a failing case comes from: its bias group, or suite/split and the file:line of its row."""
    if f["suite"] == "bias":
        return f"bias: {f['bias_group']}"
    return f"{f['suite']}/{f['split']}" + (f" at {f['where']}" if f.get("where") else "")


def run_section(facts: dict, md_dir) -> list[str]:
    out = ["## Run"]
    adapters = facts.get("adapters") or {}
    if adapters:
        rows = []
        for seed, a in adapters.items():
            share = f"{a['trainable_params'] / a['total_params'] * 100:.2f}%" if a.get("trainable_params") and a.get("total_params") else "—"
            rows.append([cell(seed), f"`{cell(str(a.get('key', '?'))[:12])}`", f"`{cell(str(a.get('weights', '?'))[7:19])}`",
                         "trained now" if a.get("trained_now") else "cached",
                         "—" if a.get("wall_time_s") is None else f"{a['wall_time_s']:.1f} s",
                         "—" if a.get("final_val_loss") is None else f"{a['final_val_loss']:.4f}", share])
        out += ["### Adapters (one per seed)", table(["seed", "key", "weights", "status", "train time", "final val loss", "trainable"], rows)]
        if facts.get("loss_curve"):
            out.append(f"[loss curve]({link(facts['loss_curve'], md_dir)})")
    else:
        out += ["### Adapters", "No adapter in this run."]
    model = [[label, cell(facts[key])] for key, label in
             (("base_model", "base model"), ("base_identity", "base identity"), ("device", "device")) if key in facts]
    if model:
        out += ["### Model", table(["fact", "value"], model)]
    phases = facts.get("phases") or {}
    if phases:
        rows = [[cell(name), f"{secs:.1f}"] for name, secs in phases.items()]
        rows.append(["**total**", f"**{sum(phases.values()):.1f}**"])
        out += ["### Time per phase", table(["phase", "seconds"], rows)]
    return out


def link(path: str, md_dir) -> str:
    """A markdown link target relative to the markdown file, with spaces and parentheses encoded."""
    target = str(path)
    if md_dir is not None:
        try:
            target = os.path.relpath(target, md_dir)
        except ValueError:  # another drive on Windows
            pass
    return target.replace(os.sep, "/").replace(" ", "%20").replace("(", "%28").replace(")", "%29")
