"""python -m training.sweep: train the default recipe under several learning rates, batch sizes and epochs,
and print validation loss and validation exact match for each (how the defaults in config.py were chosen)."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

GRID = (  # (learning_rate, per_device_train_batch_size, num_train_epochs)
    (2e-4, 16, 3.0),
    (1e-3, 16, 3.0),
    (1e-3, 8, 3.0),
    (1e-3, 4, 3.0),
    (5e-4, 4, 3.0),
    (2e-3, 8, 3.0),
    (1e-3, 8, 5.0),
)


def main(argv=None) -> int:
    from platformdirs import user_cache_path
    from tabulate import tabulate

    from evals.dataset import load_splits
    from evals.policy import load_policy
    from fixtures.base_model import load_base, pick_runtime, resolve_base_model
    from fixtures.candidates import load_candidates
    from fixtures.generate import GenerationSettings
    from fixtures.model_host import ModelHost
    from fixtures.predictions import PredictionStore, predict
    from reports.scoring import accuracies
    from training.build import trained_candidate_system
    from training.config import TrainConfig
    from training.recipe import train_adapter

    p = argparse.ArgumentParser(prog="python -m training.sweep", description=__doc__)
    p.add_argument("--base-model", default="smollm2-135m-instruct")
    p.add_argument("--cache-dir", type=Path, default=user_cache_path("router-evals"))
    p.add_argument("--only", type=int, nargs="*", help="indexes into the grid")
    args = p.parse_args(argv)

    policy = load_policy()
    splits = load_splits(policy)
    candidates = {c.name: c for c in load_candidates(policy, splits["train"])}
    system = trained_candidate_system(candidates)
    runtime = pick_runtime()
    ref = resolve_base_model(args.base_model, args.cache_dir)
    model, tokenizer = load_base(ref, runtime)
    host = ModelHost(model, tokenizer, ref, runtime)
    rows = []
    for i, (lr, bs, epochs) in enumerate(GRID):
        if args.only and i not in args.only:
            continue
        cfg = dataclasses.replace(TrainConfig(), learning_rate=lr, per_device_train_batch_size=bs, num_train_epochs=epochs)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "adapter"
            out.mkdir()
            result = train_adapter(ref, runtime, cfg, system, splits["train"], splits["val"], out, log=lambda _: None)
            started = time.perf_counter()
            with host.using(out) as m:
                preds = predict(m, tokenizer, policy, candidates["fine-tuned"], splits["val"], f"sweep-{i}",
                                PredictionStore(Path(tmp) / "preds"), GenerationSettings(128, 64 if runtime.device == "cuda" else 8))
            acc = accuracies(splits["val"], preds)
        rows.append([lr, bs, epochs, result.steps, f"{result.wall_time_s:.0f}", result.val_loss[-1][1],
                     f"{acc['schema_valid']:.0%}", f"{acc['tier']:.0%}", f"{acc['recommended_platform']:.0%}",
                     f"{acc['exact']:.0%}", f"{time.perf_counter() - started:.0f}"])
        print(tabulate(rows[-1:], tablefmt="plain"), flush=True)
    print(tabulate(rows, headers=["lr", "batch", "epochs", "steps", "train s", "val loss", "val schema", "val tier",
                                  "val platform", "val exact", "predict s"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
