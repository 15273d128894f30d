"""The merge gate's decision: this run's seeds against the recorded baseline seeds, case by case. Pure functions.

Inputs are plain data: cases (evals.dataset.Case), and runs as {run label: {case key (Case.key): decision}}, where a decision is
{"parse": kind, "tier", "risk", "recommended_platform", "needs_review"} (what evals/expectations.py records).

A case's state over a set of runs: "right" when every run got all four fields right with a valid answer, "wrong"
when none did, "unstable" otherwise. Against the baseline each case is fixed (wrong -> right), broken
(right -> wrong), unchanged (same stable state), unstable (unstable on either side) or new (no baseline).

The gate fails on a regression beyond noise, and only then:
1. more stable cases broken than fixed, by the one-sided exact sign test at `alpha`
   (P(X >= broken) for X ~ Binomial(broken + fixed, 1/2));
2. a field, or a rule's exact match, that drops: judged from cases x seeds, each case weighed by its right-rate over
   the seeds (an unstable case counts by how often it is right), by a one-sided exact paired permutation test of the
   per-case rates (current against baseline), Holm-adjusted over every field and rule at `alpha`, and only where the
   mean drop is larger than its margin (`field_margin` for the fields and exact match, `rule_margin` for a rule:
   rules hold few cases, so one case is many points). A band defined by the baseline's worst seed is no band when
   a seed collapses; the per-case rates see a rule collapse in one seed as a third of its cases lost. A mean below
   the baseline seeds' minimum by more than the margin fails too, tested or not (a rule of a few cases can never
   reach significance);
3. a must-pass invariant broken by every one of this run's seeds on a case where every baseline seed kept it (or a
   case the baseline never saw): a stable flip, as for broken cases. A case where the seeds split on the invariant
   is seed noise, measured as such by the gate benchmark (a majority rule failed every benign change there).
   Violations the baseline already had (in any of its seeds) are listed, not failed.

With one seed on either side (the CPU default) nothing is known to be stable: a single retraining flips dozens of
cases and must-pass invariants both ways (measured: `python -m evals.gate_benchmark --seeds 1` on the CPU), and a
band of one seed has no width. So checks 2 and 3 change there: the bands are shown but not judged, and must-pass
breaks are weighed against must-pass repairs (cases the baseline violated that every current seed now keeps) by the
same one-sided sign test as check 1. Check 1 is unchanged: it is a paired test, valid for one seed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from evals.must_pass import UNPARSED, Invariant
from evals.policy import DECISION_FIELDS
from reports.scoring import METRICS, score
from reports.stats import holm, paired_permutation_lower, sign_test_greater


@dataclass(frozen=True)
class VerdictSettings:
    alpha: float = 0.05
    field_margin: float = 0.05
    rule_margin: float = 0.25


@dataclass
class Verdict:
    counts: dict  # fixed, broken, unchanged, unstable, new -> number of cases
    p: float
    changed: dict  # fixed/broken/unstable/new -> [case row], each with expected and got per run
    band_drops: list = field(default_factory=list)
    must_pass_breaks: list = field(default_factory=list)
    must_pass_known: list = field(default_factory=list)
    bands: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)  # {"baseline": [labels], "current": [labels]}
    must_pass_repaired: int = 0  # cases the baseline violated that every current seed keeps
    must_pass_p: float = 1.0  # one seed: P(X >= breaks), X ~ Binomial(breaks + repaired, 1/2)

    @property
    def one_seed(self) -> bool:
        return min(len(self.runs.get("baseline", ())), len(self.runs.get("current", ()))) < 2

    @property
    def bands_fail(self) -> bool:
        return bool(self.band_drops) and not self.one_seed

    @property
    def must_pass_fails(self) -> bool:
        return self.must_pass_p < self.settings["alpha"] if self.one_seed else bool(self.must_pass_breaks)

    @property
    def ok(self) -> bool:
        return self.p >= self.settings["alpha"] and not self.bands_fail and not self.must_pass_fails

    def headline(self) -> str:
        c = self.counts
        reasons = []
        if self.p < self.settings["alpha"]:
            reasons.append(f"more cases broken than fixed (p < {self.settings['alpha']})")
        if self.bands_fail:
            reasons.append(f"{len(self.band_drops)} field(s) or rule(s) dropped beyond their margin (paired permutation, Holm)")
        if self.must_pass_fails:
            reasons.append(f"{len(self.must_pass_breaks)} must-pass break(s)"
                           + (f" against {self.must_pass_repaired} repaired (p < {self.settings['alpha']})" if self.one_seed else ""))
        tail = "no regression" if self.ok else "REGRESSION: " + "; ".join(reasons)
        one = (f" [one seed: must-pass broken {len(self.must_pass_breaks)}, repaired {self.must_pass_repaired}, "
               f"p = {self.must_pass_p:.3g}; {len(self.band_drops)} band drop(s) shown, not judged]" if self.one_seed else "")
        return (f"fixed {c['fixed']}, broken {c['broken']}, unstable {c['unstable']}, unchanged {c['unchanged']}, "
                f"new {c['new']}, p = {self.p:.3g}: {tail}{one}")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "headline": self.headline(), "counts": self.counts, "p": self.p, "changed": self.changed,
                "band_drops": self.band_drops, "must_pass_breaks": self.must_pass_breaks,
                "must_pass_known": self.must_pass_known, "must_pass_repaired": self.must_pass_repaired,
                "must_pass_p": self.must_pass_p, "one_seed": self.one_seed, "bands": self.bands, "settings": self.settings,
                "runs": self.runs}


# ---- one case -------------------------------------------------------------------------------------


def scores(expected: dict, decision: dict | None) -> dict:
    """{metric: bool} for one run's recorded decision (reports.scoring.score over the recorded fields)."""
    if decision is None:
        return dict.fromkeys(METRICS, False)
    parse = decision.get("parse")
    got = {f: decision.get(f) for f in DECISION_FIELDS if decision.get(f) is not None}
    return score(expected, got, parse not in UNPARSED, parse == "ok")


def is_right(expected: dict, decision: dict | None) -> bool:
    """All four fields right in an answer that honours the contract (what an asserted eval requires)."""
    s = scores(expected, decision)
    return s["exact"] and s["schema_valid"]


def state(expected: dict, decisions: list) -> str | None:
    """'right', 'wrong' or 'unstable' over the runs' decisions; None when no run has this case."""
    present = [d for d in decisions if d is not None]
    if not present:
        return None
    right = sum(is_right(expected, d) for d in present)
    return "right" if right == len(present) else "wrong" if right == 0 else "unstable"


def transition(before: str | None, after: str | None) -> str:
    if before is None:
        return "new"
    if "unstable" in (before, after):
        return "unstable"
    if before == after:
        return "unchanged"
    return "fixed" if after == "right" else "broken"


def case_row(case, base_runs: dict, cur_runs: dict) -> dict:
    """What a reviewer reads for one case: the label against every run's answer, before and after."""
    def answers(runs: dict) -> dict:
        return {label: _short(d.get(case.key)) for label, d in runs.items()}

    return {"case_id": case.id, "where": case.where, "rules": list(case.rules),
            "expected": {f: case.expected[f] for f in DECISION_FIELDS},
            "baseline": answers(base_runs), "current": answers(cur_runs)}


def _short(decision: dict | None):
    if decision is None:
        return None
    return {"parse": decision.get("parse"), **{f: decision.get(f) for f in DECISION_FIELDS}}


# ---- bands ------------------------------------------------------------------------------------------


def run_rates(cases, runs: dict) -> dict:
    """{metric or 'rule:<id>': [rate per run]} over the cases each run has."""
    out: dict = defaultdict(list)
    for decisions in runs.values():
        per_metric = defaultdict(lambda: [0, 0])
        for case in cases:
            if case.key not in decisions:
                continue
            s = scores(case.expected, decisions[case.key])
            for m in METRICS:
                per_metric[m][0] += s[m]
                per_metric[m][1] += 1
            for rule in case.rules:
                per_metric[f"rule:{rule}"][0] += s["exact"]
                per_metric[f"rule:{rule}"][1] += 1
        for key, (k, n) in per_metric.items():
            out[key].append(k / n)
    return dict(out)


def case_rates(cases, runs: dict) -> dict:
    """{metric or 'rule:<id>': {case key: share of the runs having the case that got the metric right}}: each case
    weighed by how often it is right, so an unstable case counts for its rate instead of dropping out."""
    out: dict = defaultdict(dict)
    for case in cases:
        decisions = [d[case.key] for d in runs.values() if case.key in d]
        if not decisions:
            continue
        per_run = [scores(case.expected, d) for d in decisions]
        for m in METRICS:
            out[m][case.key] = sum(s[m] for s in per_run) / len(per_run)
        for rule in case.rules:
            out[f"rule:{rule}"][case.key] = out["exact"][case.key]
    return dict(out)


def band(values: list) -> dict:
    return {"min": min(values), "max": max(values), "mean": sum(values) / len(values), "runs": len(values)}


# ---- the verdict -------------------------------------------------------------------------------------


def judge(cases, bias, base_runs: dict, cur_runs: dict, invariants: tuple[Invariant, ...] = (),
          settings: VerdictSettings = VerdictSettings()) -> Verdict:
    """cases: the test split; bias: [(group, case, source case or None)] judged by the must-pass invariants only."""
    common = [c for c in cases if any(c.key in d for d in base_runs.values())]
    buckets: dict = {k: [] for k in ("fixed", "broken", "unchanged", "unstable", "new")}
    for case in sorted(cases, key=lambda c: c.id):
        before = state(case.expected, [d.get(case.key) for d in base_runs.values()])
        after = state(case.expected, [d.get(case.key) for d in cur_runs.values()])
        if after is None:
            continue
        buckets[transition(before, after)].append(case)
    p = sign_test_greater(len(buckets["broken"]), len(buckets["fixed"]))

    before_rates, after_rates = run_rates(common, base_runs), run_rates(common, cur_runs)
    before_cases, after_cases = case_rates(common, base_runs), case_rates(common, cur_runs)
    bands, tests = {}, {}
    for key, values in sorted(before_rates.items()):
        if key not in after_rates:
            continue
        b, a = band(values), band(after_rates[key])
        margin = settings.rule_margin if key.startswith("rule:") else settings.field_margin
        diffs = [after_cases[key][k] - rate for k, rate in before_cases[key].items() if k in after_cases[key]]
        drop = -sum(diffs) / len(diffs) if diffs else 0.0
        tests[key] = paired_permutation_lower(diffs)
        bands[key] = {"baseline": b, "current": a, "margin": margin, "drop": drop, "cases": len(diffs)}
    adjusted = holm(tests)
    drops = []
    for key, entry in bands.items():
        entry.update(p=tests[key], p_holm=adjusted[key])
        below_band = entry["current"]["mean"] < entry["baseline"]["min"] - entry["margin"] - 1e-9
        if below_band or (entry["drop"] > entry["margin"] + 1e-9 and adjusted[key] < settings.alpha):
            b, a = entry["baseline"], entry["current"]
            drops.append({"metric": key, "baseline_min": b["min"], "baseline_max": b["max"], "baseline_mean": b["mean"],
                          "current_mean": a["mean"], "current_min": a["min"], "current_max": a["max"],
                          "margin": entry["margin"], "drop": entry["drop"], "cases": entry["cases"], "p": tests[key],
                          "p_holm": adjusted[key]})

    breaks, known, repaired = must_pass(cases, bias, base_runs, cur_runs, invariants)
    counts = {k: len(v) for k, v in buckets.items()}
    shown = {k: [case_row(c, base_runs, cur_runs) for c in v] for k, v in buckets.items() if k != "unchanged"}
    return Verdict(counts, p, shown, drops, breaks, known, bands,
                   {"alpha": settings.alpha, "field_margin": settings.field_margin, "rule_margin": settings.rule_margin},
                   {"baseline": sorted(base_runs), "current": sorted(cur_runs)},
                   repaired, sign_test_greater(len(breaks), repaired))


def broken_share(inv: Invariant, case, source, runs: dict) -> float | None:
    """The share of the runs that have this case which break the invariant; None when none has it."""
    results = [
        not inv.holds(case, d.get(case.key), d.get(source.key) if source is not None else None)
        for d in runs.values() if case.key in d
    ]
    return None if not results else sum(results) / len(results)


def must_pass(cases, bias, base_runs: dict, cur_runs: dict, invariants) -> tuple[list, list, int]:
    """(breaks that fail the gate, violations the baseline already had, how many violated cases every seed now keeps).

    Judged per case over the seed ensemble: a break is an invariant that every current seed breaks on a case where
    every baseline seed kept every invariant that applies to it (a stable flip of a compliant case). A case the
    baseline already violated in some seed, under any invariant, is listed as known when every current seed breaks
    one: trading one violation for another (no integration for the wrong one) is not a new break. A case appears
    once per invariant even when it is also a bias-group target (the counterexample group holds test cases).
    """
    targets, seen = [], set()
    for group, case, source in [(None, c, None) for c in cases] + list(bias):
        applying = [inv for inv in invariants if inv.applies(case, group)]
        key = (case.key, source.key if source is not None else None, tuple(inv.id for inv in applying))
        if applying and key not in seen:
            seen.add(key)
            targets.append((case, source, applying))
    breaks, known, repaired = [], [], 0
    for case, source, applying in targets:
        before = {inv.id: broken_share(inv, case, source, base_runs) for inv in applying}
        after = {inv.id: broken_share(inv, case, source, cur_runs) for inv in applying}
        compliant = all(share is None or share == 0.0 for share in before.values())
        if not compliant and all(share == 0.0 for share in after.values()):
            repaired += 1
        for inv in applying:
            if after[inv.id] != 1.0:
                continue
            row = {"invariant": inv.id, "text": inv.text, **case_row(case, base_runs, cur_runs)}
            if source is not None:
                row["source"] = case_row(source, base_runs, cur_runs)
            (breaks if compliant else known).append(row)
    return breaks, known, repaired
