"""The scorecard's short form for pytest's terminal summary, from summarize()'s dict."""

from __future__ import annotations

from reports.render_markdown import lead_lines, pct
from reports.scoring import METRICS, SHORT
from reports.summary import FINE_TUNED


def render_text(summary: dict) -> list[str]:
    """A few lines for pytest's terminal summary: per candidate exact and field accuracies, then the paired tests."""
    lines = [line.replace("**", "").replace("`", "") for line in lead_lines(summary.get("lead"))]
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
    timed = {c: v for c, v in (summary.get("cost") or {}).items() if v["device_s_per_request"] is not None}
    if timed:
        lines.append("device s per request: " + ", ".join(
            f"{c} {v['device_s_per_request']:.3f}" + (f" ({v['relative_cost']:.2f}x)" if v["relative_cost"] is not None else "")
            for c, v in timed.items()))
    if summary["bias"]:
        totals = {c: [0, 0] for c in summary["candidates"]}
        for by_cand in summary["bias"].values():
            for c, v in by_cand.items():
                totals[c][0] += v["k"]
                totals[c][1] += v["n"]
        lines.append("bias pass: " + ", ".join(f"{c} {k}/{n}" for c, (k, n) in totals.items() if n))
    return lines
