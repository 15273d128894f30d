"""The training benchmark's smollm part runs the recipe once per TrainConfig override set; the sets parse strictly."""

import pytest

from training.benchmark import parse_overrides


def test_each_run_is_a_set_of_typed_overrides():
    assert parse_overrides("") == [{}]
    assert parse_overrides("memory_plan=fast;memory_plan=eager,per_device_train_batch_size=16,"
                           "learning_rate=0.003,padding_free=false") == [
        {"memory_plan": "fast"},
        {"memory_plan": "eager", "per_device_train_batch_size": 16, "learning_rate": 0.003, "padding_free": False},
    ]


@pytest.mark.parametrize("spec", ["batch=16", "memory_plan", "per_device_train_batch_size=many", "target_modules=q_proj"])
def test_a_bad_override_is_named(spec):
    with pytest.raises(SystemExit, match="smollm-configs: '" + spec):
        parse_overrides(spec)


def test_the_recipe_variants_loss_is_the_trainers(tiny_model_dir, tiny, adapter_system, splits, tmp_path):
    """The benchmark's `recipe` variant times sft_loss; it must be what SFTTrainer.compute_loss returns for the batch
    the recipe's collator builds (padding-free, prompt tokens unlabelled), not the model's full-logit loss."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from training.benchmark import sft_loss
    from training.config import TrainConfig, lora_config
    from training.recipe import build_dataset

    _, tokenizer = tiny
    rows = list(build_dataset(tokenizer, adapter_system, splits["train"][:4]))
    args = SFTConfig(output_dir=str(tmp_path / "trainer"), report_to=[], use_cpu=True, padding_free=True,
                     per_device_train_batch_size=4, max_length=None)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=lora_config(TrainConfig(lora_dropout=0.0)))
    batch = trainer.data_collator(rows)
    assert (batch["labels"] == -100).any()  # prompts are not scored
    model = trainer.model.eval()
    with torch.no_grad():
        expected = trainer.compute_loss(model, dict(batch))
        rest = {k: v for k, v in batch.items() if k not in ("input_ids", "labels")}  # position_ids
        got = sft_loss(model, batch["input_ids"], batch["labels"], **rest)
        one = {"input_ids": torch.tensor([rows[0]["input_ids"]]), "labels": torch.tensor([rows[0]["labels"]])}
        plain = sft_loss(model, **one)
        full = model(**one, use_cache=False).loss
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert plain.item() == pytest.approx(full.item(), rel=1e-5)  # and the model's own loss where both apply


def test_profile_steps_profiles_exactly_its_range():
    from types import SimpleNamespace

    import torch

    from training.benchmark import parse_step_range, profile_steps

    assert parse_step_range("3:5") == (3, 5)
    for bad in ("0:2", "5:3", "3", "a:b"):
        with pytest.raises(Exception, match="FIRST:LAST"):
            parse_step_range(bad)
    lines = []
    callback = profile_steps(2, 3, lines.append)
    for step in range(4):  # global_step counts finished steps: step s + 1 runs between begin and end
        callback.on_step_begin(None, SimpleNamespace(global_step=step), None)
        torch.ones(64, 64) @ torch.ones(64, 64)
        callback.on_step_end(None, SimpleNamespace(global_step=step + 1), None)
        assert (callback.profiler is not None) == (step + 1 == 2)
    assert lines[0] == "profile of steps 2-3, by self CPU time:" and "aten::mm" in lines[1]


def test_the_summary_says_met_only_for_a_measured_figure_inside_its_target():
    """part all's summary: one row per speed target, each figure beside its same-run comparison; a target is met only
    by a figure this run measured, and a missing figure (a failed variant) is MISSED, never met."""
    from training.benchmark import ALL_CAPPED_GIB, capped_name, summary_rows

    n_base = 4_022_468_096
    qwen = {"plain": {"tok_s": 4775.0, "peak_gib": 12.05, "n_base": n_base, "plan": ""},
            "recipe": {"tok_s": 15430.0, "peak_gib": 14.51, "n_base": n_base, "plan": "fast"},
            capped_name(ALL_CAPPED_GIB): {"tok_s": 5326.0, "peak_gib": 4.37, "n_base": n_base, "plan": "lean"}}
    smollm = [{"config": "default", "plan": "graphs", "steps": 123, "train s": 23.1, "tok/s": 5755, "val loss": 0.5157},
              {"config": "memory_plan=plain", "plan": "plain", "steps": 123, "train s": 90.2, "tok/s": 1473, "val loss": 0.5160}]
    predictions = {"seconds": {"base": (3.7, 200, 256), "few-shot": (4.9, 200, 256), "fine-tuned": (1.2, 200, 256)},
                   "decode": {"batch": 200, "bare": 9.94, "off": 10.03, "on": 11.67, "peft": 17.34, "merged": 9.02,
                              "once": {"bare": 72.9, "off": 80.8, "on": 102.4, "peft": 140.0, "merged": 70.0}}}
    rows = {r[0].split(" (plan")[0]: r for r in summary_rows(qwen, smollm, predictions)}
    assert rows["4B shape, recipe default"][-1] == "met"  # 25.1% MFU at 14.51 GiB
    assert "3.23x plain PEFT" in rows["4B shape, recipe default"][2]
    assert rows["4B shape, recipe, process capped at 16 GiB"][-1] == "met"  # lean, 4.37 GiB
    assert rows["default model, 123 steps, trainer.train()"][-1] == "MISSED"  # 23.1 s > 84 / 5
    assert "3.90x slower" in rows["default model, 123 steps, trainer.train()"][2]
    assert rows["3 candidates over 200 prompts, after load"][1:2] == ["9.80 s"]
    assert rows["3 candidates over 200 prompts, after load"][-1] == "met"
    assert rows["few-shot per case against base"][-1] == "MISSED"  # 24.5 ms against 18.5
    assert rows["adapter's decode step over the bare base's, batch 200"][-1] == "met"  # 1.17x
    assert "once per batch (eager first step and capture) 102 ms against 73" in rows["adapter's decode step over the bare base's, batch 200"][2]

    qwen["recipe"] = {"error": "OOM (peak 23.0 GiB)"}
    qwen[capped_name(ALL_CAPPED_GIB)]["plan"] = "fast"  # the cap was not seen
    smollm[0]["train s"] = 16.0
    rows = summary_rows(qwen, smollm, {})
    assert [r[-1] for r in rows] == ["MISSED", "MISSED", "met", "MISSED", "MISSED", "MISSED"]
    assert rows[0][1] == "OOM (peak 23.0 GiB)" and rows[3][1] == rows[4][1] == rows[5][1] == "missing"

    seeds = {"wall_s": 56.5, "processes": 3, "rcs": [0, 0, 0],
             "seeds": {s: {"trained_by": 1, "train_adapter_s": 36.0, "val_loss": 0.52} for s in range(3)}}
    row = summary_rows(qwen, smollm, {}, seeds)[3]
    assert row[1] == "56.5 s wall" and row[-1] == "met"
    seeds["seeds"][2]["trained_by"] = 0  # a seed nobody trained: not a measurement of three
    assert summary_rows(qwen, smollm, {}, seeds)[3][-1] == "MISSED"


STAND_IN = """
import argparse, json, os, sys, time
from pathlib import Path
p = argparse.ArgumentParser()
for flag in ("--seeds", "--base-model", "--cache-dir", "--adapter-cache"):
    p.add_argument(flag)
a = p.parse_args()
assert Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).parent == Path(a.adapter_cache).parent  # both in the temp folder
Path(a.adapter_cache).mkdir(parents=True, exist_ok=True)
out = {}
for seed in range(int(a.seeds)):  # as build_seeds: take a seed nobody holds, reuse the others
    try:
        os.close(os.open(Path(a.adapter_cache) / f"seed{seed}", os.O_CREAT | os.O_EXCL))
        time.sleep(0.2)
        out[str(seed)] = {"adapter": "x", "trained_now": True, "wall_time_s": 0.2, "final_val_loss": 0.5 + seed / 100}
    except FileExistsError:
        out[str(seed)] = {"adapter": "x", "trained_now": False, "wall_time_s": 0.2, "final_val_loss": 0.5 + seed / 100}
print("training log line")
print(json.dumps(out, indent=2))
print("a warning printed at exit", file=sys.stderr)
"""


def test_seeds_side_by_side_shares_the_seeds_out(tmp_path):
    """part seeds starts `python -m training --seeds N` N times at once (here a stand-in that claims seeds as
    build_seeds does): the result has the wall time, each seed's figures from the process that trained it, and says
    whether every seed was trained exactly once; the adapters and the inductor cache go with the temp folder."""
    from training.benchmark import seeds_shared_out, seeds_side_by_side

    program = tmp_path / "stand_in.py"
    program.write_text(STAND_IN)
    lines = []
    result = seeds_side_by_side(3, "base", tmp_path / "cache", tmp_path, lines.append, program=(str(program),))
    assert result["rcs"] == [0, 0, 0], lines
    assert result["seeds"] == {s: {"trained_by": 1, "train_adapter_s": 0.2, "val_loss": 0.5 + s / 100} for s in range(3)}
    assert seeds_shared_out(result) and result["wall_s"] >= 0.2
    assert lines[-1].startswith("3 processes at once: ") and "seed 2: trained by 1 process(es), 0.2 s" in lines[-1]
    assert [p.name for p in tmp_path.iterdir()] == ["stand_in.py"]

    twice = {**result, "seeds": {**result["seeds"], 1: {"trained_by": 2}}}
    assert not seeds_shared_out(twice) and not seeds_shared_out({**result, "rcs": [0, 1, 0]})
