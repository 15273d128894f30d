"""The scorecard's summary: pure functions from eval records, run facts and the gate's verdict to one plain dict.

Data flow: records (one per eval test, see `router_record`) -> summarize() -> a JSON-able dict (reports/scorecard.json),
which reports/render_markdown.py, render_png.py and render_text.py each turn into one output, and
reports/comment.py into the pull-request comment. Nothing here touches pytest or formats text.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from evals.policy import DECISION_FIELDS
from reports.cost import cost_summary
from reports.scoring import METRICS
from reports.stats import mcnemar_exact, wilson

FINE_TUNED = "fine-tuned"
ALPHA = 0.05


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
        "lead": lead(accuracy, facts),
        "candidates": candidates,
        "runs": {c: sorted({r.get("run", "main") for r in records if r["candidate"] == c}) for c in candidates},
        "accuracy": accuracy,
        "stability": stability(policy, candidates),
        "paired": paired_tests(policy, candidates, splits),
        "rules": exact_by_group(policy, rule_groups),
        "bias": exact_by_group(bias, lambda r: [r.get("bias_group") or "(ungrouped)"]),
        "gate": gate,
        "cost": cost_summary(policy, candidates),
        "failures": failures(records, candidates),
        "run": facts,
    }


CLASSICAL = "classical"


def lead(accuracy: dict, facts: dict) -> dict | None:
    """Where fine-tuned stands on the first split (test when scored) against the classical candidate and the best
    prompt-only one: exact match, fine-tuned's per-seed rates, and how many of its seeds reach the classical floor."""
    if not accuracy:
        return None
    split, by_cand = next(iter(accuracy.items()))
    tuned = by_cand.get(FINE_TUNED)
    if tuned is None:
        return None
    ex = tuned["exact"]
    n = ex["n_per_run"]
    seeds = {run: k / n for run, k in ex["per_run"].items()} if n else {}
    classical = by_cand.get(CLASSICAL, {}).get("exact")
    adapters = {name for name in by_cand if name.startswith(FINE_TUNED)}
    prompt_only = {c: t["exact"]["rate"] for c, t in by_cand.items() if c not in adapters and c != CLASSICAL}
    best = max(prompt_only, key=lambda c: (prompt_only[c], c), default=None)
    floor = classical["rate"] if classical else None
    return {
        "split": split, "fine_tuned": ex["rate"], "seeds": seeds,
        "classical": floor, "seeds_at_or_above_classical": None if floor is None else sum(r >= floor - 1e-12 for r in seeds.values()),
        "best_prompt_only": best, "best_prompt_only_rate": None if best is None else prompt_only[best],
        "record": (facts.get("record") or {}).get("line"),
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
