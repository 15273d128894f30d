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
