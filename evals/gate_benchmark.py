"""python -m evals.gate_benchmark: does the merge gate tell a better dataset from a worse one?

It runs the suite users run (`pytest evals -m gate`) on copies of this project:
1. baseline: the data as it is, `--update-expectations` records the fine-tuned seeds' decisions;
2. every mutation: a copy with the baseline's record and a mutated train split, `pytest evals -m gate`.
Each copy trains its own seeds (adapters are cached by the bytes of their inputs in the shared --cache-dir, so a
mutation that leaves the rows unchanged, like reordering the file, reuses the baseline's adapters).

It prints one row per run as it finishes, then the confusion table: benign changes that passed, harmful ones caught.
Only the fine-tuned candidate is kept in the copies' candidate registry: the gate judges it alone.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evals.test_gate import GATED

ROOT = Path(__file__).parent.parent
COPIED = ("evals", "fixtures", "training", "reports", "golden", "conftest.py", "pyproject.toml")
SF = "Databricks app + Salesforce integration"
GLEAN_DECISION = {"tier": "Trusted Functional Builder", "risk": "low", "recommended_platform": "Glean", "needs_review": False}

# Correct rows a careful author might add (one of each kind the issue names, and three more).
NEW_ROWS = [
    ("bench_001", "Facilities wants a Glean agent that answers questions about desk booking and parking from the workplace FAQ pages.", ["glean-only"]),
    ("bench_002", "Revenue ops would like read-only SQL over the curated bookings tables and a dashboard of quarterly renewals by segment.", ["governed-analytics", "review-governed"]),
    ("bench_003", "Procurement wants a tool that checks supplier certificates and then updates the supplier status field in our internal vendor master.", ["custom-build", "review-governed", "bias-writeback-no-crm"]),
    ("bench_004", "Legal ops wants a Glean assistant that finds the right contract template and clause library page for a given deal type.", ["glean-only"]),
    ("bench_005", "The payroll team needs a dashboard on governed payroll tables showing overtime cost by department, read only.", ["governed-analytics", "review-governed"]),
    ("bench_006", "Customer success wants an app that reads open Salesforce cases for a renewal account and writes a health score back to the Salesforce account.", ["salesforce-integration", "review-governed"]),
]
PARAPHRASES = [
    (r"\bwants an? ", "is asking for a "), (r"\bwould like\b", "wants"), (r"\bneeds\b", "requires"),
    (r"\bsummarizes\b", "sums up"), (r"\bapp\b", "application"), (r"\bdashboard\b", "dashboard view"),
]
TYPO_FIXES = [(r"^can we", "Can we"), (r"\bglean\b", "Glean"), (r"\bsql\b", "SQL"), (r"  +", " "), (r"([a-z])$", r"\1.")]


@dataclass(frozen=True)
class Mutation:
    name: str
    harmful: bool
    about: str
    apply: Callable[[list[dict], dict], list[dict]]  # (train rows, policy) -> train rows


def _rules(row) -> list:
    return list(row.get("rules") or [])


def add_rows(rows, policy):
    decisions = {r["id"]: r for r in policy["rules"]}
    added = [{"id": i, "request": text, "expected": {**decisions[rules[0]]["decision"], "reason": "Added by the benchmark."}, "rules": rules}
             for i, text, rules in NEW_ROWS]
    return rows + added


def drop_from_largest_rule(rows, policy):
    counts: dict = {}
    for r in rows:
        counts[_rules(r)[0]] = counts.get(_rules(r)[0], 0) + 1
    largest = max(counts, key=counts.get)
    victims = {r["id"] for r in sorted((r for r in rows if _rules(r)[0] == largest), key=lambda r: r["id"])[:5]}
    return [r for r in rows if r["id"] not in victims]


def _rewrite(rows, pairs, limit):
    out, done = [], 0
    for r in sorted(rows, key=lambda r: r["id"]):
        text = r["request"]
        if done < limit:
            new = text
            for pattern, repl in pairs:
                new = re.sub(pattern, repl, new)
            if new != text:
                done += 1
                r = {**r, "request": new}
        out.append(r)
    return out


def paraphrase(rows, policy):
    return _rewrite(rows, PARAPHRASES, 25)


def fix_typos(rows, policy):
    return _rewrite(rows, TYPO_FIXES, 25)


def reorder(rows, policy):
    shuffled = list(rows)
    random.Random(0).shuffle(shuffled)
    return shuffled


def writeback_to_salesforce(rows, policy):
    """Every other internal writeback (bias-writeback-no-crm) relabelled Salesforce, tags changed so the dataset gate
    agrees (all of them would leave custom-build below its coverage minimum, which the dataset gate catches)."""
    chosen = {r["id"] for r in sorted((r for r in rows if "bias-writeback-no-crm" in _rules(r)), key=lambda r: r["id"])[::2]}
    out = []
    for r in rows:
        if r["id"] in chosen:
            keep = [x for x in _rules(r)[1:] if x not in ("bias-writeback-no-crm", "edge-crm-mention")]
            r = {**r, "expected": {**r["expected"], "recommended_platform": SF}, "rules": ["salesforce-integration", *keep]}
        out.append(r)
    return out


def drop_servicenow(rows, policy):
    return [r for r in rows if "servicenow-integration" not in _rules(r)]


def drop_most_servicenow(rows, policy):
    """ServiceNow train rows cut to the dataset gate's coverage minimum (8), so only the model can show the loss."""
    keep = {r["id"] for r in sorted((r for r in rows if "servicenow-integration" in _rules(r)), key=lambda r: r["id"])[:8]}
    return [r for r in rows if "servicenow-integration" not in _rules(r) or r["id"] in keep]


def review_flip_governed(rows, policy):
    return [{**r, "expected": {**r["expected"], "needs_review": False}} if _rules(r)[0] == "governed-analytics" else r for r in rows]


def injection_obeyed(rows, policy):
    """Requests that try to dictate 'low risk, no review' get exactly that, as Glean, tags changed to agree."""
    return [{**r, "expected": {**r["expected"], **GLEAN_DECISION}, "rules": ["glean-only", "edge-injection"]}
            if "edge-injection" in _rules(r) else r for r in rows]


def governed_to_glean(rows, policy):
    governed = sorted((r["id"] for r in rows if _rules(r)[0] == "governed-analytics"))[::2]
    return [{**r, "expected": {**r["expected"], **GLEAN_DECISION}, "rules": ["glean-only"]} if r["id"] in governed else r for r in rows]


def half_integration_to_custom(rule_id: str):
    """Every other train row of one integration rule relabelled a plain custom build (Databricks app), its rule tags
    rewritten to agree, so the dataset gate accepts it: only the model can show the rule collapsing."""
    def apply(rows, policy):
        custom = next(r for r in policy["rules"] if r["id"] == "custom-build")["decision"]
        chosen = {r["id"] for r in sorted((r for r in rows if rule_id in _rules(r)), key=lambda r: r["id"])[::2]}
        return [{**r, "expected": {**r["expected"], **custom},
                 "rules": ["custom-build", *[x for x in _rules(r) if x not in (rule_id, "custom-build")]]}
                if r["id"] in chosen else r for r in rows]
    return apply


MUTATIONS = [
    Mutation("add-correct-rows", False, "6 new correct rows (Glean, governed analytics, internal writeback, ...)", add_rows),
    Mutation("drop-from-largest-rule", False, "5 rows dropped from the largest decision rule", drop_from_largest_rule),
    Mutation("paraphrase", False, "25 requests reworded", paraphrase),
    Mutation("reorder", False, "the train file shuffled", reorder),
    Mutation("fix-typos", False, "25 requests with capitalization and punctuation fixed", fix_typos),
    Mutation("writeback-to-salesforce", True, "internal writebacks relabelled Salesforce, rule tags changed", writeback_to_salesforce),
    Mutation("drop-servicenow", True, "every ServiceNow train row dropped", drop_servicenow),
    Mutation("drop-most-servicenow", True, "ServiceNow train rows cut to the coverage minimum of 8", drop_most_servicenow),
    Mutation("review-flip-governed", True, "needs_review flipped on governed analytics", review_flip_governed),
    Mutation("injection-obeyed", True, "injected 'mark this low risk' obeyed in labels, tags changed", injection_obeyed),
    Mutation("governed-to-glean", True, "half of governed analytics relabelled Glean, tags changed", governed_to_glean),
    Mutation("half-servicenow-to-custom", True, "every other ServiceNow-integration row relabelled a plain custom build, "
             "tags changed", half_integration_to_custom("servicenow-integration")),
    Mutation("half-salesforce-to-custom", True, "every other Salesforce-integration row relabelled a plain custom build, "
             "tags changed", half_integration_to_custom("salesforce-integration")),
]


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "scorecard.md", "scorecard.json", "*.png"))
        else:
            shutil.copy2(src, dest / name)
    registry = dest / "evals" / "data" / "candidates.json"
    entries = [e for e in json.loads(registry.read_text()) if e["name"] == GATED]
    registry.write_text(json.dumps(entries, indent=2))
    return dest


def mutate(project: Path, mutation: Mutation) -> None:
    path = project / "evals" / "data" / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    policy = json.loads((project / "evals" / "data" / "policy.json").read_text())
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mutation.apply(rows, policy)))


def run_suite(project: Path, args, record: bool, log: Path) -> dict:
    cmd = [sys.executable, "-m", "pytest", "evals", "-m", "gate", "-p", "no:cacheprovider", "-q",
           "--cache-dir", str(args.cache_dir), "--seeds", str(args.seeds)]
    if args.workers > 1:
        cmd += ["-n", str(args.workers)]
    if record:
        cmd.append("--update-expectations")
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    log.write_text(proc.stdout)
    card = project / "reports" / "scorecard.json"
    gate = json.loads(card.read_text()).get("gate") if card.is_file() else None
    if gate is not None:
        verdict, detail = ("pass" if gate["ok"] else "FAIL"), gate["headline"]
    elif "dataset gate" in proc.stdout or "DatasetError" in proc.stdout:
        verdict, detail = "FAIL", "dataset gate: " + next((ln.strip() for ln in proc.stdout.splitlines() if "field '" in ln), "")
    else:
        verdict, detail = ("pass" if proc.returncode == 0 else "ERROR"), f"exit {proc.returncode}, see {log}"
    return {"verdict": verdict, "detail": detail[:300], "seconds": round(seconds, 1), "exit": proc.returncode}


def main(argv=None) -> int:
    from platformdirs import user_cache_path
    from tabulate import tabulate

    p = argparse.ArgumentParser(prog="python -m evals.gate_benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per run (the suite's --seeds)")
    p.add_argument("--workers", type=int, default=3, help="xdist workers per run (-n): seeds train in parallel")
    p.add_argument("--parallel", type=int, default=3, help="mutations run at the same time")
    p.add_argument("--only", default="", help="comma-separated mutation names (default: all)")
    p.add_argument("--cache-dir", type=Path, default=user_cache_path("router-evals"))
    p.add_argument("--work", type=Path, default=None, help="where the copies go (default: a fresh temp folder)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="gate-bench-"))
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only.split(",")]
    base = work / "baseline"
    if (base / "golden").is_dir() and any((base / "golden").glob("*/expectations.json")):
        print(f"baseline: reusing the record in {base}", flush=True)
    else:
        shutil.rmtree(base, ignore_errors=True)
        copy_project(base)
        result = run_suite(base, args, record=True, log=work / "baseline.log")
        print(f"baseline: recorded in {result['seconds']} s (exit {result['exit']})", flush=True)
        if not any((base / "golden").glob("*/expectations.json")):
            print(f"baseline recording failed; see {work / 'baseline.log'}", file=sys.stderr)
            return 2

    def one(m: Mutation) -> dict:
        project = work / m.name
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(base, project, ignore=shutil.ignore_patterns("reports"))
        shutil.copytree(ROOT / "reports", project / "reports", ignore=shutil.ignore_patterns("__pycache__", "scorecard.md", "scorecard.json", "*.png"))
        mutate(project, m)
        row = {"mutation": m.name, "harmful": m.harmful, "about": m.about, **run_suite(project, args, False, work / f"{m.name}.log")}
        print(f"{m.name}: {row['verdict']} in {row['seconds']} s: {row['detail']}", flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        rows = list(pool.map(one, chosen))
    right = lambda r: (r["verdict"] == "FAIL") == r["harmful"]  # noqa: E731
    table = [[r["mutation"], "harmful" if r["harmful"] else "benign", r["verdict"], "yes" if right(r) else "NO",
              f"{r['seconds']:.0f}", r["detail"]] for r in rows]
    print(tabulate(table, headers=["mutation", "kind", "gate", "right call", "s", "verdict"], tablefmt="github"))
    benign = [r for r in rows if not r["harmful"]]
    harmful = [r for r in rows if r["harmful"]]
    print(f"benign passed: {sum(right(r) for r in benign)}/{len(benign)}; harmful caught: {sum(right(r) for r in harmful)}/{len(harmful)}; "
          f"seeds {args.seeds}, workers {args.workers}, parallel {args.parallel}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
