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


def summarize(records: list[dict], facts: dict, baseline: dict) -> dict:
    """Everything the scorecard shows, as plain JSON-able data."""
    records = sorted(records, key=lambda r: (r["suite"], r["split"], r["candidate"], r["case_id"], r.get("bias_group") or ""))
    policy = [r for r in records if r["suite"] == "policy"]
    bias = [r for r in records if r["suite"] == "bias"]
    candidates = candidate_order(r["candidate"] for r in records)
    splits = sorted({r["split"] for r in policy}, key=lambda s: (s != "test", s))
    accuracy = {
        split: {
            cand: {m: tally(sum(bool(r["scores"].get(m)) for r in rows), len(rows)) for m in METRICS}
            for cand in candidates
            if (rows := [r for r in policy if r["split"] == split and r["candidate"] == cand])
        }
        for split in splits
    }
    return {
        "candidates": candidates,
        "accuracy": accuracy,
        "paired": paired_tests(policy, candidates, splits),
        "rules": exact_by_group(policy, lambda r: r.get("rules") or ["(no rule)"]),
        "bias": exact_by_group(bias, lambda r: [r.get("bias_group") or "(ungrouped)"]),
        "baseline": baseline_delta(accuracy, baseline),
        "failures": failures(records, candidates),
        "run": facts,
    }


def paired_tests(policy: list[dict], candidates: list[str], splits: list[str]) -> list[dict] | None:
    """Exact McNemar of fine-tuned against every other candidate on the cases both were scored on."""
    if FINE_TUNED not in candidates:
        return None
    out = []
    for split in splits:
        exact = {
            cand: {r["case_id"]: bool(r["scores"].get("exact")) for r in policy if r["split"] == split and r["candidate"] == cand}
            for cand in candidates
        }
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


def exact_by_group(records: list[dict], groups_of) -> dict:
    """{group: {candidate: {k, n}}} of exact matches; a record counts once in each of its groups."""
    out: dict = {}
    for r in records:
        for group in groups_of(r):
            cell = out.setdefault(group, {}).setdefault(r["candidate"], {"k": 0, "n": 0})
            cell["k"] += bool(r["scores"].get("exact"))
            cell["n"] += 1
    return {group: out[group] for group in sorted(out)}


def baseline_delta(accuracy: dict, baseline: dict) -> dict | None:
    """The baseline candidate's field accuracies now against reports/baseline.json; None when there is no baseline."""
    if not baseline or not baseline.get("fields"):
        return None
    cand, split = baseline.get("candidate", FINE_TUNED), baseline.get("split", "test")
    now = accuracy.get(split, {}).get(cand)
    fields = {}
    for field, before in baseline["fields"].items():
        rate = now[field]["rate"] if now and field in now else None
        delta = None if rate is None else round((rate - before) * 100, 1)
        fields[field] = {"baseline": before, "now": rate, "delta_pp": delta}
    return {"candidate": cand, "split": split, "n": baseline.get("n"), "base_model": baseline.get("base_model"),
            "scored": now is not None, "fields": fields}


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
            "case_id": r["case_id"], "suite": r["suite"], "split": r["split"], "bias_group": r.get("bias_group"),
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
    parts += accuracy_section(summary)
    parts += paired_section(summary)
    parts += group_section("Exact match per rule (policy cases)", "rule", summary["rules"], summary["candidates"])
    parts += group_section("Bias checks (pass = all four fields right)", "bias check", summary["bias"], summary["candidates"])
    parts += baseline_section(summary["baseline"])
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


def arrow(delta: float | None) -> str:
    if delta is None:
        return "—"
    return f"▲ +{delta:.1f} pp" if delta > 0 else f"▼ −{-delta:.1f} pp" if delta < 0 else "＝ 0.0 pp"


def baseline_section(delta: dict | None) -> list[str]:
    head = "## Against reports/baseline.json"
    if delta is None:
        return [head, "No baseline yet (`--update-baseline` writes one)."]
    model = f", base model `{cell(delta['base_model'])}`" if delta.get("base_model") else ""
    about = f"Baseline: `{cell(delta['candidate'])}` on split `{cell(delta['split'])}`, n = {delta['n']}{model}."
    if not delta["scored"]:
        return [head, about + " This run did not score that candidate on that split: no comparison."]
    rows = [[f, pct(d["baseline"]), pct(d["now"]), arrow(d["delta_pp"])] for f, d in delta["fields"].items()]
    return [head, about, table(["field", "baseline", "now", "change"], rows)]


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
        where = f"bias: {f['bias_group']}" if f["suite"] == "bias" else f"{f['suite']}/{f['split']}"
        got = decision_text(f["got"], f["fields"]) if f["got"] is not None else "no JSON: " + text_cell(f["raw"], 60)
        parse = "" if f["parse_kind"] == "ok" else f["parse_kind"]
        rows.append([cell(f["case_id"]), cell(where), ", ".join(f["fields"]), decision_text(f["expected"], f["fields"]), got, parse])
    return out + [f"### Every failing case of {FINE_TUNED}", table(["case", "where", "fields wrong", "expected", "got", "parse"], rows)]


def run_section(facts: dict, md_dir) -> list[str]:
    out = ["## Run"]
    a = facts.get("adapter")
    if a:
        rows = [["cache key", f"`{cell(str(a.get('key', '?'))[:12])}`"],
                ["status", "trained now" if a.get("trained_now") else "reused from cache"]]
        if a.get("wall_time_s") is not None:
            rows.append(["train time", f"{a['wall_time_s']:.1f} s"])
        if a.get("trainable_params") and a.get("total_params"):
            share = a["trainable_params"] / a["total_params"] * 100
            rows.append(["trainable parameters", f"{a['trainable_params']:,} of {a['total_params']:,} ({share:.2f}%)"])
        for key, label in (("final_train_loss", "final train loss"), ("final_val_loss", "final val loss")):
            if a.get(key) is not None:
                rows.append([label, f"{a[key]:.4f}"])
        if a.get("loss_curve"):
            rows.append(["loss curve", f"[loss curve]({link(a['loss_curve'], md_dir)})"])
        out += ["### Adapter", table(["adapter", "value"], rows)]
    else:
        out += ["### Adapter", "No adapter in this run."]
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
            lines.append(f"{cand:<{width}} [{split}] exact {ex['k']}/{ex['n']} ({pct(ex['rate'])}) | {fields}")
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
