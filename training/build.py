"""Dataset gate, then the cached adapter for the current data, config, base model and prompt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evals.dataset import DatasetError
from evals.gate import gate_problems
from fixtures.base_model import BaseModelRef, Runtime
from fixtures.prompts import PREFILL, end_of_turn
from training.adapter_cache import AdapterBusy, AdapterInfo, ensure_adapter, key_inputs
from training.config import TrainConfig
from training.recipe import train_adapter, trainable_line


def trained_candidate_system(candidates: dict) -> str:
    users = [c for c in candidates.values() if c.adapter == "trained"]
    if not users:
        raise ValueError("no candidate in evals/data/candidates.json uses the trained adapter (adapter: \"trained\")")
    systems = {c.system for c in users}
    if len(systems) > 1:
        raise ValueError("candidates using the trained adapter must share one system prompt: it is what the adapter is trained on")
    return systems.pop()


def build_or_reuse_adapter(settings, policy, splits: dict, candidates: dict, ref: BaseModelRef, runtime: Runtime,
                           run_id: str = "", cfg: TrainConfig = TrainConfig(), log=print, wait: bool = True) -> AdapterInfo:
    from transformers import AutoTokenizer

    problems = gate_problems(splits, policy, settings.gate)
    if problems:
        raise DatasetError(problems)
    system = trained_candidate_system(candidates)
    tokenizer = AutoTokenizer.from_pretrained(ref.path, trust_remote_code=settings.trust_remote_code)
    prompt_template = {"system": system, "chat_template": tokenizer.chat_template, "prefill": PREFILL, "end_of_turn": end_of_turn(tokenizer)}
    inputs = key_inputs(splits["train"], splits["val"], cfg.to_dict(), ref.identity, runtime.label, prompt_template)

    def train_into(folder: Path) -> dict:
        result = train_adapter(ref, runtime, cfg, system, splits["train"], splits["val"], folder, log=log,
                               trust_remote_code=settings.trust_remote_code)
        log(f"trained in {result.wall_time_s:.0f}s; {trainable_line(result.trainable_params, result.total_params)}")
        return {**result.to_dict(), "device": runtime.label}

    return ensure_adapter(settings.adapter_cache, inputs, train_into, retrain=settings.retrain, no_train=settings.no_train,
                          run_id=run_id, log=log, wait=wait)


def seed_order(seeds: int, worker: int) -> list[int]:
    """Seeds 0..seeds-1, starting at this worker's own (xdist gw<worker>), so parallel workers start on different seeds."""
    return [(worker + i) % seeds for i in range(seeds)]


def build_seeds(settings, policy, splits: dict, candidates: dict, ref: BaseModelRef, runtime: Runtime, seeds: int,
                worker: int = 0, run_id: str = "", cfg: TrainConfig = TrainConfig(), log=print) -> dict[int, AdapterInfo]:
    """{seed: adapter} for seeds that differ from cfg only in seed; each is trained once however many processes ask.

    First pass: take every seed no other process is building now (train it or reuse it). Second pass: wait for the
    seeds others were building. Under xdist with as many workers as seeds, each worker trains one seed in parallel."""
    done: dict[int, AdapterInfo] = {}
    order = seed_order(seeds, worker)
    for wait in (False, True):
        for seed in order:
            if seed in done:
                continue
            try:
                done[seed] = build_or_reuse_adapter(settings, policy, splits, candidates, ref, runtime, run_id=run_id,
                                                    cfg=replace(cfg, seed=seed), log=log, wait=wait)
            except AdapterBusy:
                log(f"seed {seed}: another process is training it; coming back to it")
    return dict(sorted(done.items()))
