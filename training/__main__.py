"""python -m training: gate the dataset, then train (or reuse) the adapter, outside pytest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evals.dataset import DatasetError, load_splits
from evals.policy import load_policy
from fixtures.base_model import CPU_PRECISIONS, DEFAULT_NAME, pick_runtime, resolve_base_model
from fixtures.candidates import load_candidates
from fixtures.options import DEFAULT_SEEDS, parse_seeds
from training.build import build_seeds
from training.recipe import trainable_line


def parse_args(argv=None) -> argparse.Namespace:
    from platformdirs import user_cache_path

    p = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    p.add_argument("--base-model", default=DEFAULT_NAME, help="local folder or Hugging Face id (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--cache-dir", type=Path, default=user_cache_path("router-evals"), help="cache root (as pytest --cache-dir)")
    p.add_argument("--adapter-cache", type=Path, default=None, help="adapter folder (default: CACHE_DIR/adapters)")
    p.add_argument("--retrain", action="store_true", help="train even when the adapter is cached")
    p.add_argument("--require-gpu", action="store_true", help="fail instead of training on CPU")
    p.add_argument("--cpu-4bit", action="store_true", help="quantize the base to NF4 on CPU too (slow)")
    p.add_argument("--cpu-precision", choices=CPU_PRECISIONS, default="auto",
                   help="unquantized base on the CPU: auto (bf16 where the CPU has AMX, else fp32), fp32 or bf16")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--seeds", type=int, default=None,
                   help="train seeds 0..N-1 (default: the suite's default for this device, 'cpu=1 cuda=3')")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from evals.gate import GateSettings

    args = parse_args(argv)
    settings = argparse.Namespace(
        gate=GateSettings(), trust_remote_code=args.trust_remote_code, retrain=args.retrain, no_train=False,
        adapter_cache=args.adapter_cache or args.cache_dir / "adapters",
    )
    policy = load_policy()
    try:
        splits = load_splits(policy)
        runtime = pick_runtime(args.require_gpu, args.cpu_4bit, args.cpu_precision)
        ref = resolve_base_model(args.base_model, args.cache_dir)
        seeds = args.seeds or parse_seeds(None, DEFAULT_SEEDS)[runtime.device]
        built = build_seeds(settings, policy, splits, {c.name: c for c in load_candidates(policy, splits["train"])},
                            ref, runtime, seeds=seeds, log=print)
    except DatasetError as exc:
        print(f"dataset gate failed, nothing trained:\n{exc}", file=sys.stderr)
        return 2
    for seed, info in built.items():
        m = info.manifest
        print(f"seed {seed}: " + trainable_line(m["trainable_params"], m["total_params"]))
    print(json.dumps({str(seed): {"adapter": str(info.path), "trained_now": info.trained_now, "wall_time_s": info.manifest.get("wall_time_s"),
                                  "final_val_loss": info.summary()["final_val_loss"]} for seed, info in built.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
