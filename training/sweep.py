"""python -m training.sweep: train recipes over several seeds each and judge each recipe by the mean and the
minimum over its seeds of val exact match (never one seed); test exact is printed beside it, never used to choose.

A recipe is a set of TrainConfig overrides, `--recipes 'learning_rate=2e-3,num_train_epochs=3;reason_loss_share=0.25'`
(";" between recipes, "," between fields; the empty recipe is the shipped default). Each (recipe, seed) trains with
training/recipe.py train_adapter and predicts with the suite's own prediction path (fixtures/predictor.py), so a
sweep measures what `pytest evals` would run. Runs go to --processes worker processes at once; each finished run is
appended to --out as one JSON line as it comes, so an interrupted sweep keeps what it measured."""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from training.config import TrainConfig

_WORKER: dict = {}  # per worker process: the loaded base model, policy and splits (built once, on first use)


def parse_recipe(text: str) -> dict:
    """'learning_rate=2e-3,num_train_epochs=3' -> {field: value}, each value typed by its TrainConfig field."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise ValueError(f"recipe {text!r}: {part!r} is not FIELD=VALUE with a TrainConfig field "
                             f"({', '.join(sorted(fields))})")
        kind = type(getattr(TrainConfig(), name))
        out[name] = value.strip().lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def recipe_name(overrides: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in overrides.items()) or "default"


def rule_exact(cases, predictions: dict) -> dict:
    """{rule id: share of its cases with all four decision fields right}."""
    from reports.scoring import score

    hits: dict[str, list[bool]] = {}
    for case in cases:
        p = predictions[case.key].parsed
        ok = score(case.expected, p.obj, p.json_valid, p.schema_valid)["exact"]
        for rule in case.rules:
            hits.setdefault(rule, []).append(ok)
    return {rule: round(sum(v) / len(v), 4) for rule, v in sorted(hits.items())}


def _worker_state(base_model: str, cache_dir: str) -> dict:
    if not _WORKER:
        from types import SimpleNamespace

        from evals.dataset import load_splits
        from evals.policy import load_policy
        from fixtures.base_model import load_base, pick_runtime, resolve_base_model
        from fixtures.budget import auto_max_new_tokens
        from fixtures.candidates import load_candidates
        from fixtures.model_host import ModelHost
        from fixtures.predictor import Predictor

        policy = load_policy()
        splits = load_splits(policy)
        candidates = {c.name: c for c in load_candidates(policy, splits["train"])}
        runtime = pick_runtime()
        ref = resolve_base_model(base_model, Path(cache_dir), log=lambda _: None)
        model, tokenizer = load_base(ref, runtime)
        host = ModelHost(model, tokenizer, ref, runtime)
        settings = SimpleNamespace(cache_dir=Path(tempfile.mkdtemp(prefix="sweep-preds-")),
                                   max_new_tokens=auto_max_new_tokens(tokenizer, splits), batch_size_cpu=32,
                                   batch_size_cuda=None)  # None: fitted to the device, as the suite's "auto"
        predictor = Predictor(settings, policy, candidates, host, {"phases": {}}, cases_for=lambda name: (),
                              log=lambda _: None)
        _WORKER.update(policy=policy, splits=splits, candidates=candidates, runtime=runtime, ref=ref, host=host,
                       predictor=predictor)
    return _WORKER


def run_one(overrides: dict, seed: int, base_model: str, cache_dir: str) -> dict:
    """Train one (recipe, seed) and score its predictions on val and test with the fine-tuned candidate."""
    from training.build import trained_candidate_system
    from training.recipe import train_adapter
    from fixtures.predictions import candidate_key, predict
    from reports.scoring import accuracies

    w = _worker_state(base_model, cache_dir)
    cfg = dataclasses.replace(TrainConfig(), **overrides, seed=seed)
    candidate = w["candidates"]["fine-tuned"]
    out: dict = {"recipe": recipe_name(overrides), "overrides": overrides, "seed": seed, "runtime": w["runtime"].label}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "adapter"
        folder.mkdir()
        result = train_adapter(w["ref"], w["runtime"], cfg, trained_candidate_system(w["candidates"]), w["splits"]["train"],
                               w["splits"]["val"], folder, log=lambda _: None)
        out.update(steps=result.steps, train_s=round(result.train_s, 1), val_loss=result.val_loss[-1][1])
        generation = w["predictor"].generation_for(candidate)
        key = candidate_key(candidate, w["ref"].identity, w["runtime"].label, f"sweep-{tmp}", w["host"].tokenizer.chat_template,
                            generation)
        started = time.perf_counter()
        with w["host"].using(folder) as model:
            for split in ("val", "test"):
                cases = w["splits"][split]
                preds = predict(model, w["host"].tokenizer, w["policy"], candidate, cases, key,
                                w["predictor"].store, generation)
                acc = accuracies(cases, preds)
                out[split] = {"exact": acc["exact"], "schema_valid": acc["schema_valid"], "rules": rule_exact(cases, preds)}
        out["predict_s"] = round(time.perf_counter() - started, 1)
    return out


def summarize(rows: list[dict]) -> list[list]:
    """One row per recipe: val exact mean and min over seeds (the choice), test exact mean/min/spread, worst rule."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["recipe"], []).append(r)
    table = []
    for name, runs in by.items():
        val = [r["val"]["exact"] for r in runs]
        test = [r["test"]["exact"] for r in runs]
        worst = min(((rule, share) for r in runs for rule, share in r["test"]["rules"].items()), key=lambda x: x[1])
        table.append([name, len(runs), statistics.mean(val), min(val), statistics.mean(test), min(test),
                      max(test) - min(test), f"{worst[0]} {worst[1]:.0%}", statistics.mean(r["train_s"] for r in runs)])
    table.sort(key=lambda row: (row[3], row[2]), reverse=True)
    return table


def print_summary(rows: list[dict]) -> None:
    from tabulate import tabulate

    print(tabulate(summarize(rows), headers=["recipe", "seeds", "val exact mean", "val exact min", "test exact mean",
                                             "test exact min", "test spread", "worst test rule (any seed)", "train s"],
                   tablefmt="github", floatfmt=".3f"))


def main(argv=None) -> int:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from platformdirs import user_cache_path

    p = argparse.ArgumentParser(prog="python -m training.sweep", description=__doc__)
    p.add_argument("--recipes", default="", help="';'-separated recipes of 'FIELD=VALUE,...' TrainConfig overrides")
    p.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1 for every recipe (at least 4 to judge one)")
    p.add_argument("--processes", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--base-model", default="smollm2-135m-instruct")
    p.add_argument("--cache-dir", type=Path, default=user_cache_path("router-evals"))
    p.add_argument("--out", type=Path, default=None, help="append one JSON line per finished run here")
    p.add_argument("--deadline-s", type=float, default=None, help="start no run after this many seconds")
    p.add_argument("--summarize", type=Path, default=None, help="print the table of a finished --out file and exit")
    args = p.parse_args(argv)
    if args.summarize:
        print_summary([json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()])
        return 0
    if args.seeds < 1 or args.processes < 1:
        p.error("--seeds and --processes must be at least 1")
    try:
        recipes = [parse_recipe(r) for r in args.recipes.split(";")]
    except ValueError as exc:
        p.error(str(exc))
    jobs = [(r, seed) for r in recipes for seed in range(args.seeds)]  # a recipe's seeds together: complete ones first
    rows = []
    deadline = time.monotonic() + args.deadline_s if args.deadline_s else None
    with ProcessPoolExecutor(args.processes, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, r, seed, args.base_model, str(args.cache_dir)) for r, seed in jobs]
        for future in as_completed(futures):
            if deadline is not None and time.monotonic() > deadline:
                print(f"--deadline-s {args.deadline_s:g} passed: runs not started are dropped", flush=True)
                pool.shutdown(wait=False, cancel_futures=True)
                deadline = None
            if future.cancelled():
                continue
            try:
                row = future.result()
            except Exception:  # one failed run is reported and the sweep goes on
                import traceback

                traceback.print_exc()
                continue
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("recipe", "seed", "steps", "train_s", "val_loss")}
                             | {"val": row["val"]["exact"], "test": row["test"]["exact"]}), flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    print_summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
