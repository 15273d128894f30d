"""The scorecard: pure functions from eval records, run facts and the baseline to JSON, markdown, PNG and text.

Data flow: records (one per eval test, see `router_record`) -> summarize() -> a plain dict, which
render_markdown(), render_png() and render_text() each turn into one output. Nothing here touches pytest.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Iterable

from evals.policy import DECISION_FIELDS
from reports.scoring import METRICS
from reports.stats import mcnemar_exact, wilson

FINE_TUNED = "fine-tuned"
ALPHA = 0.05
SHORT = {"json_valid": "json", "schema_valid": "schema", "recommended_platform": "platform", "needs_review": "review"}
PNG_NAME = "scorecard.png"


# ---- summary ---------------------------------------------------------------------------------


def merge_facts(parts: Iterable[dict]) -> dict:
    """Merge run-fact dicts in order: later values win, nested dicts are merged one level deep."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = dict(value) if isinstance(value, dict) else value
    return out


def candidate_order(names: Iterable[str]) -> list[str]:
    """Candidates sorted by name, fine-tuned last: the same order however records arrive."""
    return sorted(set(names), key=lambda name: (name == FINE_TUNED, name))


def tally(k: int, n: int) -> dict:
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "low": low, "high": high}


def run_tally(rows: list[dict], metric: str) -> dict:
    """A metric over one candidate's records: pooled over its runs (seeds), with each run's rate and their band."""
    by_run: dict = {}
    for r in rows:
        cell_ = by_run.setdefault(r.get("run", "main"), [0, 0])
        cell_[0] += bool(r["scores"].get(metric))
        cell_[1] += 1
    k, n = sum(v[0] for v in by_run.values()), sum(v[1] for v in by_run.values())
    rates = [v[0] / v[1] for v in by_run.values() if v[1]]
    out = tally(k, n)
    out.update(runs=len(by_run), min=min(rates) if rates else None, max=max(rates) if rates else None,
               per_run={run: v[0] for run, v in sorted(by_run.items())}, n_per_run=max((v[1] for v in by_run.values()), default=0))
    return out


def summarize(records: list[dict], facts: dict, gate: dict | None = None) -> dict:
    """Everything the scorecard shows, as plain JSON-able data."""
    records = sorted(records, key=lambda r: (r["suite"], r["split"], r["candidate"], r["case_id"], r.get("bias_group") or "", r.get("run", "main")))
    policy = [r for r in records if r["suite"] == "policy"]
    bias = [r for r in records if r["suite"] == "bias"]
    candidates = candidate_order(r["candidate"] for r in records)
    splits = sorted({r["split"] for r in policy}, key=lambda s: (s != "test", s))
    accuracy = {
        split: {
            cand: {m: run_tally(rows, m) for m in METRICS}
            for cand in candidates
            if (rows := [r for r in policy if r["split"] == split and r["candidate"] == cand])
        }
        for split in splits
    }
    return {
        "candidates": candidates,
        "runs": {c: sorted({r.get("run", "main") for r in records if r["candidate"] == c}) for c in candidates},
        "accuracy": accuracy,
        "stability": stability(policy, candidates),
        "paired": paired_tests(policy, candidates, splits),
        "rules": exact_by_group(policy, rule_groups),
        "bias": exact_by_group(bias, lambda r: [r.get("bias_group") or "(ungrouped)"]),
        "gate": gate,
        "failures": failures(records, candidates),
        "run": facts,
    }


def rule_groups(record: dict) -> list[str]:
    """The per-rule table's rows a policy record counts in: its rules, or (a --cases row without rules) its expected
    tier and platform, so a file without rules still shows where the candidates miss."""
    if record.get("rules"):
        return list(record["rules"])
    expected = record["expected"]
    return [f"expected {expected['tier']} · {expected['recommended_platform']}"]


def case_states(rows: list[dict]) -> dict:
    """{(split, case id): 'right' | 'wrong' | 'unstable'} over a candidate's runs (exact match)."""
    seen: dict = {}
    for r in rows:
        seen.setdefault((r["split"], r["case_id"]), []).append(bool(r["scores"].get("exact")))
    return {key: "right" if all(v) else "wrong" if not any(v) else "unstable" for key, v in seen.items()}


def stability(policy: list[dict], candidates: list[str]) -> dict:
    """Per candidate with more than one run: how many cases every seed got right, none did, or the seeds split on."""
    out = {}
    for cand in candidates:
        rows = [r for r in policy if r["candidate"] == cand]
        if len({r.get("run", "main") for r in rows}) < 2:
            continue
        states = case_states(rows)
        out[cand] = {
            "stable_right": sum(v == "right" for v in states.values()),
            "stable_wrong": sum(v == "wrong" for v in states.values()),
            "unstable": sorted(f"{cid}" if split == "test" else f"{split}:{cid}" for (split, cid), v in states.items() if v == "unstable"),
            "n": len(states),
        }
    return out


def paired_tests(policy: list[dict], candidates: list[str], splits: list[str]) -> list[dict] | None:
    """Exact McNemar of fine-tuned against every other candidate on the cases both were scored on."""
    if FINE_TUNED not in candidates:
        return None
    out = []
    for split in splits:
        exact = {cand: majority_exact([r for r in policy if r["split"] == split and r["candidate"] == cand]) for cand in candidates}
        mine = exact[FINE_TUNED]
        for other in candidates:
            theirs = exact[other]
            common = sorted(mine.keys() & theirs.keys())
            if other == FINE_TUNED or not common:
                continue
            b = sum(mine[c] and not theirs[c] for c in common)
            c = sum(theirs[c] and not mine[c] for c in common)
            p = mcnemar_exact(b, c)
            out.append({
                "split": split, "other": other, "n": len(common),
                "k": sum(mine[c] for c in common), "other_k": sum(theirs[c] for c in common),
                "only_fine_tuned": b, "only_other": c, "p": p, "significant": p < ALPHA,
            })
    return out


def majority_exact(rows: list[dict]) -> dict:
    """{case id: exact match by a majority of the candidate's runs} (one run: that run)."""
    votes: dict = {}
    for r in rows:
        votes.setdefault(r["case_id"], []).append(bool(r["scores"].get("exact")))
    return {cid: sum(v) * 2 > len(v) for cid, v in votes.items()}


def exact_by_group(records: list[dict], groups_of) -> dict:
    """{group: {candidate: {k, n}}} of exact matches; a record counts once in each of its groups."""
    out: dict = {}
    for r in records:
        for group in groups_of(r):
            cell = out.setdefault(group, {}).setdefault(r["candidate"], {"k": 0, "n": 0})
            cell["k"] += bool(r["scores"].get("exact"))
            cell["n"] += 1
    return {group: out[group] for group in sorted(out)}


def failures(records: list[dict], candidates: list[str]) -> dict:
    """Counts of failed cases per candidate and suite, and every failing case of fine-tuned in full."""
    counts = {}
    for cand in candidates:
        mine = [r for r in records if r["candidate"] == cand]
        counts[cand] = {
            suite: {"failed": sum(not r["scores"].get("exact") for r in rows), "n": len(rows)}
            for suite in ("policy", "bias")
            if (rows := [r for r in mine if r["suite"] == suite])
        }
        counts[cand]["parse_kinds"] = dict(sorted(Counter(r["parse_kind"] for r in mine if r["parse_kind"] != "ok").items()))
    cases = [
        {
            "case_id": r["case_id"], "run": r.get("run", "main"), "suite": r["suite"], "split": r["split"], "bias_group": r.get("bias_group"),
            "where": r.get("where"),
            "fields": [f for f in DECISION_FIELDS if not r["scores"].get(f)],
            "expected": r["expected"], "got": r["got"], "parse_kind": r["parse_kind"], "raw": r.get("raw", ""),
        }
        for r in records
        if r["candidate"] == FINE_TUNED and not r["scores"].get("exact")
    ]
    return {"counts": counts, "cases": cases}


# ---- markdown ---------------------------------------------------------------------------------


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
    parts = ["# Router scorecard", f"![field accuracy per candidate]({PNG_NAME})"]
    parts += gate_section(summary.get("gate"))
    parts += accuracy_section(summary)
    parts += stability_section(summary.get("stability") or {})
    parts += paired_section(summary)
    parts += group_section("Exact match per rule (policy cases)", "rule", summary["rules"], summary["candidates"])
    parts += group_section("Bias checks (pass = all four fields right)", "bias check", summary["bias"], summary["candidates"])
    parts += failures_section(summary["failures"], summary["candidates"])
    parts += run_section(summary["run"], md_dir)
    return "\n\n".join(parts) + "\n"


def accuracy_section(summary: dict) -> list[str]:
    out = []
    for split, by_cand in summary["accuracy"].items():
        cands = list(by_cand)
        rows = [[m] + [fmt_tally(by_cand[c][m]) for c in cands] for m in METRICS]
        out += [f"## Accuracy on split `{cell(split)}` (k/n, 95% Wilson interval)", table(["field", *map(cell, cands)], rows)]
    return out or ["## Accuracy", "No policy records in this run."]


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


# ---- chart and text ---------------------------------------------------------------------------


def render_png(summary: dict) -> bytes:
    """Bar chart of field accuracy per candidate (one panel per split), Wilson intervals as error bars."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splits = list(summary["accuracy"]) or ["(none)"]
    fig = Figure(figsize=(10, 3.6 * len(splits)), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, split in zip(fig.subplots(len(splits), 1, squeeze=False)[:, 0], splits):
        by_cand = summary["accuracy"].get(split, {})
        width = 0.8 / max(1, len(by_cand))
        for i, (cand, tallies) in enumerate(by_cand.items()):
            xs = [j + (i - (len(by_cand) - 1) / 2) * width for j in range(len(METRICS))]
            rates = [tallies[m]["rate"] or 0.0 for m in METRICS]
            errs = [[max(0.0, r - tallies[m]["low"]) for r, m in zip(rates, METRICS)],
                    [max(0.0, tallies[m]["high"] - r) for r, m in zip(rates, METRICS)]]
            ax.bar(xs, rates, width, yerr=errs, capsize=2, label=cand)
        ax.set_xticks(range(len(METRICS)), [SHORT.get(m, m) for m in METRICS])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy")
        ax.set_title(f"split: {split} (error bars: 95% Wilson interval)")
        if by_cand:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def render_text(summary: dict) -> list[str]:
    """A few lines for pytest's terminal summary: per candidate exact and field accuracies, then the paired tests."""
    lines = []
    width = max((len(c) for c in summary["candidates"]), default=0)
    for split, by_cand in summary["accuracy"].items():
        for cand, t in by_cand.items():
            ex = t["exact"]
            fields = " ".join(f"{SHORT.get(m, m)} {pct(t[m]['rate'])}" for m in METRICS if m != "exact")
            band = f" (seeds {pct(ex['min'])}–{pct(ex['max'])})" if ex.get("runs", 1) > 1 else ""
            lines.append(f"{cand:<{width}} [{split}] exact {ex['k']}/{ex['n']} ({pct(ex['rate'])}){band} | {fields}")
    for cand, v in (summary.get("stability") or {}).items():
        lines.append(f"{cand}: {v['stable_right']} stable right, {v['stable_wrong']} stable wrong, {len(v['unstable'])} unstable of {v['n']}")
    if summary.get("gate"):
        lines.append(f"merge gate: {summary['gate']['headline']}")
    for t in summary["paired"] or []:
        verdict = "significant" if t["significant"] else "not significant"
        lines.append(f"{FINE_TUNED} vs {t['other']} [{t['split']}]: +{t['only_fine_tuned']}/-{t['only_other']} cases, p = {t['p']:.4f} ({verdict})")
    if summary["bias"]:
        totals = {c: [0, 0] for c in summary["candidates"]}
        for by_cand in summary["bias"].values():
            for c, v in by_cand.items():
                totals[c][0] += v["k"]
                totals[c][1] += v["n"]
        lines.append("bias pass: " + ", ".join(f"{c} {k}/{n}" for c, (k, n) in totals.items() if n))
    return lines
