"""The merge gate's verdict (evals/verdict.py Verdict.to_dict()) as text for the terminal and a failing test, and as
markdown for the scorecard. Every verdict, green or red, shows the same numbers and names the cases that decided it."""

from __future__ import annotations

from evals.policy import DECISION_FIELDS

SHORT = {"tier": "tier", "risk": "risk", "recommended_platform": "platform", "needs_review": "review"}


def answer(decision: dict | None, expected: dict) -> str:
    """One run's answer, only the fields that differ from the label ('right' when none do)."""
    if decision is None:
        return "—"
    if decision.get("parse") not in ("ok", None) and all(decision.get(f) is None for f in DECISION_FIELDS):
        return f"({decision['parse']})"
    wrong = [f"{SHORT[f]}={decision.get(f)!r}" for f in DECISION_FIELDS if decision.get(f) != expected[f]]
    if decision.get("parse") != "ok":
        wrong.insert(0, f"({decision.get('parse')})")
    return ", ".join(wrong) or "right"


def case_line(row: dict) -> str:
    label = ", ".join(f"{SHORT[f]}={v!r}" for f, v in row["expected"].items())
    before = "; ".join(f"{run}: {answer(d, row['expected'])}" for run, d in row["baseline"].items()) or "—"
    now = "; ".join(f"{run}: {answer(d, row['expected'])}" for run, d in row["current"].items())
    return f"{row['case_id']} ({', '.join(row['rules']) or 'no rule'}) expected {label} | baseline {before} | now {now}"


def band_line(drop: dict) -> str:
    tested = (f"; per-case rates drop {drop['drop']:.1%} over {drop['cases']} cases, paired permutation p = "
              f"{drop['p']:.2g} (Holm {drop['p_holm']:.2g})" if "p" in drop else "")
    return (f"{drop['metric']}: mean {drop['current_mean']:.1%} over this run's seeds "
            f"(min–max {drop['current_min']:.1%}–{drop['current_max']:.1%}), baseline seeds {drop['baseline_min']:.1%}–"
            f"{drop['baseline_max']:.1%}, allowed margin {drop['margin']:.0%}{tested}")


def text(verdict: dict, limit: int = 40) -> list[str]:
    """Lines for the terminal summary and for the gate test's failure message."""
    s = verdict["settings"]
    lines = [f"merge gate: {verdict['headline']}",
             f"  (sign test alpha {s['alpha']}, field margin {s['field_margin']:.0%}, rule margin {s['rule_margin']:.0%}; "
             f"baseline runs {', '.join(verdict['runs']['baseline'])}; this run {', '.join(verdict['runs']['current'])})"]
    if verdict.get("record"):
        lines.insert(1, f"  {verdict['record']}")
    for drop in verdict["band_drops"]:
        lines.append(("  dropped (one seed: not judged): " if verdict.get("one_seed") else "  dropped: ") + band_line(drop))
    for row in verdict["must_pass_breaks"]:
        lines.append(f"  must-pass {row['invariant']} broken: " + case_line(row))
    for kind in ("broken", "fixed", "unstable", "new"):
        rows = verdict["changed"].get(kind, [])
        for row in rows[:limit]:
            lines.append(f"  {kind}: " + case_line(row))
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more {kind} (reports/scorecard.md lists them all)")
    if verdict["must_pass_known"]:
        lines.append("  must-pass violations already in the baseline (not failing): "
                     + ", ".join(f"{r['invariant']}:{r['case_id']}" for r in verdict["must_pass_known"]))
    if verdict.get("rerecord"):
        lines.append(f"  the adapters differ from the recorded ones; once this change is wanted, re-record and commit: {verdict['rerecord']}")
    return lines
