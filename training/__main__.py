"""python -m training: gate the dataset, then train (or reuse) the adapter, outside pytest.

It reads the suite's settings from pyproject.toml's [tool.pytest.ini_options] in the current directory, as the
dataset gate in `pytest` does (router_data_dir, router_base_model, router_seeds, router_leak_jaccard,
router_min_rule_examples, router_cpu_precision), with the parsers of fixtures/options.py; a flag overrides its
setting, and without the file the defaults apply. So the workflow's training step trains the adapter the gate asks for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from evals.dataset import DATA_DIR, DatasetError, load_splits
from evals.gate import GateSettings
from evals.policy import load_policy
from fixtures.base_model import CPU_PRECISIONS, pick_runtime, resolve_base_model
from fixtures.candidates import load_candidates
from fixtures.options import (INI_DEFAULTS, given, parse_base_model, parse_cpu_precision, parse_minimums, parse_seeds,
                              parse_unit_fraction)
from training.build import build_seeds
from training.recipe import trainable_line

PYPROJECT = "pyproject.toml"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-model", default=None,
                   help="local folder or Hugging Face id (default: ini router_base_model, the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--cache-dir", default=None, help="cache root (as pytest --cache-dir; default: the user cache dir)")
    p.add_argument("--adapter-cache", default=None, help="adapter folder (default: CACHE_DIR/adapters)")
    p.add_argument("--retrain", action="store_true", help="train even when the adapter is cached")
    p.add_argument("--require-gpu", action="store_true", help="fail instead of training on CPU")
    p.add_argument("--cpu-4bit", action="store_true", help="quantize the base to NF4 on CPU too (slow)")
    p.add_argument("--cpu-precision", choices=CPU_PRECISIONS, default=None,
                   help="unquantized base on the CPU: auto (bf16 where the CPU has AMX, else fp32), fp32 or bf16 "
                        "(default: ini router_cpu_precision)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--seeds", type=int, default=None,
                   help="train seeds 0..N-1 (default: ini router_seeds for this device, 'cpu=1 cuda=3')")
    return p.parse_args(argv)


def read_ini(folder: Path) -> dict[str, str]:
    """The router_* settings of folder/pyproject.toml's [tool.pytest.ini_options] over INI_DEFAULTS, as strings (pytest
    reads a TOML scalar as its str()); only the defaults when there is no such file (the package's own data folder).
    pytest.UsageError if the file cannot be read."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own dependency there
        import tomli as tomllib

    path = Path(folder) / PYPROJECT
    if not path.is_file():  # not run from a checkout's root: the data shipped with the package, as before
        return {**INI_DEFAULTS, "router_data_dir": str(DATA_DIR)}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {}).get("ini_options", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: cannot read [tool.pytest.ini_options]: {exc}") from None
    return {key: str(table.get(key, default)) for key, default in INI_DEFAULTS.items()}


def settings_from_args(args: argparse.Namespace, ini: dict[str, str], folder: Path) -> argparse.Namespace:
    """What the run needs, each flag over its ini setting, checked as pytest checks them; pytest.UsageError if not."""
    from platformdirs import user_cache_path

    cache_dir = Path(given(args.cache_dir, "--cache-dir") or user_cache_path("router-evals")).expanduser()
    adapter_cache = Path(given(args.adapter_cache, "--adapter-cache") or cache_dir / "adapters").expanduser()
    return argparse.Namespace(
        data_dir=Path(folder) / ini["router_data_dir"],
        base_model=parse_base_model(args.base_model, ini["router_base_model"]),
        cache_dir=cache_dir,
        adapter_cache=adapter_cache,
        seeds=parse_seeds(args.seeds, ini["router_seeds"]),
        cpu_precision=parse_cpu_precision(args.cpu_precision, ini["router_cpu_precision"]),
        gate=GateSettings(leak_jaccard=parse_unit_fraction("router_leak_jaccard", ini["router_leak_jaccard"]),
                          minimums=parse_minimums(ini["router_min_rule_examples"])),
        trust_remote_code=args.trust_remote_code, retrain=args.retrain, no_train=False,
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    folder = Path.cwd()
    try:
        settings = settings_from_args(args, read_ini(folder), folder)
    except pytest.UsageError as exc:  # an ini setting's message names the key; it is read from folder/pyproject.toml
        print(f"python -m training: {exc}", file=sys.stderr)
        return 2
    policy = load_policy()
    try:
        splits = load_splits(policy, settings.data_dir)
        runtime = pick_runtime(args.require_gpu, args.cpu_4bit, settings.cpu_precision)
        ref = resolve_base_model(settings.base_model, settings.cache_dir)
        built = build_seeds(settings, policy, splits, {c.name: c for c in load_candidates(policy, splits["train"])},
                            ref, runtime, seeds=settings.seeds[runtime.device], log=print)
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
