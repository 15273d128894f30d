"""Train a LoRA adapter on the train split with TRL's SFTTrainer: loss on the assistant answer only."""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from evals.dataset import Case
from fixtures.base_model import BaseModelRef, Runtime, load_base
from fixtures.prompts import completion_text, encode_prompt, end_of_turn, fixed_prefix_ids, messages, render_prompt
from training.config import TrainConfig, lora_config
from training.memory_plan import attention_kernels, compile_layers, layer_graphs, parameter_count, trainer_kwargs
from training.shared_prompt import SHARED_ON, SharedPromptCollator
from training.shared_prompt import register as register_shared_prompt


@dataclass(frozen=True)
class TrainResult:
    trainable_params: int
    total_params: int
    train_loss: list  # [(step, loss)]
    val_loss: list  # [(step, loss)]
    wall_time_s: float
    train_tokens: int
    steps: int
    train_s: float = 0.0  # trainer.train() alone (with its once-an-epoch val passes)
    final_eval_s: float = 0.0
    batch_tokens: int = 0  # positions the training batches computed, padding included, a shared prompt start once
    real_tokens: int = 0  # the examples' own tokens
    memory_plan: str | None = None  # CUDA: the plan training/memory_plan.py chose; None on CPU

    @property
    def padding_share(self) -> float:
        """Of the positions computed, the share that were padding (0 when a shared prompt start saved more)."""
        return max(0.0, 1 - self.real_tokens / self.batch_tokens) if self.batch_tokens else 0.0

    @property
    def shared_share(self) -> float:
        """Of the examples' tokens, the share not computed because a batch held their shared prompt start once."""
        return max(0.0, 1 - self.batch_tokens / self.real_tokens) if self.real_tokens else 0.0

    def to_dict(self) -> dict:
        return {
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "train_loss": self.train_loss, "val_loss": self.val_loss, "wall_time_s": round(self.wall_time_s, 1),
            "train_tokens": self.train_tokens, "steps": self.steps, "train_s": round(self.train_s, 1),
            "final_eval_s": round(self.final_eval_s, 1), "batch_tokens": self.batch_tokens, "real_tokens": self.real_tokens,
            "padding_share": round(self.padding_share, 4), "shared_share": round(self.shared_share, 4),
            "memory_plan": self.memory_plan,
        }


def trainable_line(trainable: int, total: int) -> str:
    return f"trainable {trainable:,} of {total:,}, {100 * trainable / total:.2f}%"


REASON_KEY = '"reason": '


def keeps_reason(case_id: str, share: float) -> bool:
    """Whether this example's reason tokens are in the loss: a fixed share of examples, chosen by a hash of the id."""
    if share >= 1:
        return True
    return int(hashlib.sha256(case_id.encode("utf-8")).hexdigest()[:8], 16) / 0x100000000 < share


def answer_labels(tokenizer, completion: str, keep_reason: bool) -> tuple[list[int], list[int]]:
    """The answer's ids, and its labels: the ids, with the reason's own tokens masked (-100) unless keep_reason. The
    decision fields before the reason, and the tokens that close the object and the turn, always count."""
    if keep_reason:
        ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        return ids, list(ids)
    encoded = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    start, end = completion.rindex(REASON_KEY) + len(REASON_KEY), completion.rindex("}")
    labels = [-100 if start <= lo and hi <= end else tok for tok, (lo, hi) in zip(encoded["input_ids"], encoded["offset_mapping"])]
    return encoded["input_ids"], labels


def tokenized_example(tokenizer, system: str, case: Case, eot: str, keep_reason: bool = True) -> dict:
    """input_ids = the inference prompt's ids + the answer's ids; labels mask the prompt with -100 (and the reason
    where keep_reason is False)."""
    prompt_ids = encode_prompt(tokenizer, render_prompt(tokenizer, messages(system, case.request)))
    answer_ids, answer_lab = answer_labels(tokenizer, completion_text(case.expected, eot), keep_reason)
    return {"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_lab}


def build_dataset(tokenizer, system: str, cases: list[Case], max_length: int | None = None, reason_share: float = 1.0):
    """Tokenized rows, cut to max_length here (TRL does not cut padding-free batches; the padded path cut the same way).
    reason_share: the share of rows whose reason is in the loss (TrainConfig.reason_loss_share)."""
    from datasets import Dataset

    eot = end_of_turn(tokenizer)
    rows = [tokenized_example(tokenizer, system, c, eot, keeps_reason(c.id, reason_share))
            for c in sorted(cases, key=lambda c: c.id)]
    if max_length:
        rows = [{k: v[:max_length] for k, v in row.items()} for row in rows]
    return Dataset.from_list(rows)


@contextmanager
def head_scores_labelled_positions(device_type: str, log=print):
    """SFTTrainer's loss is TRL's fused LM head. It projects only the labelled positions (the answer) where Triton
    runs, and every position elsewhere, to keep tile shapes fixed for compilers (Neuron); on the eager CPU that only
    costs time. Inside this block, on CPU, it scores labelled positions there too: the same loss
    (tests/test_training_speed.py), about 1.5x faster a step on the default model (README, "Training")."""
    import trl.trainer.utils as trl_utils

    if device_type != "cpu":
        yield
        return
    if not callable(getattr(trl_utils, "_use_triton", None)):
        log("TRL's fused head has no _use_triton switch in this version: CPU training scores every position (slower)")
        yield
        return
    original = trl_utils._use_triton  # read by add_fused_lm_head's forward only, to choose compact scoring
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original


@contextmanager
def adapter_inputs_left_to_autocast(model, autocast: bool):
    """Under bf16 autocast, PEFT's LoRA layers cast their input to the adapter weights' dtype (fp32) and autocast casts
    it straight back to bf16 for the adapter's matmul: two copies of every adapter input, and their two copies back in
    the backward, for the same numbers (bf16 -> fp32 -> bf16 is exact). Inside this block, when training runs under
    autocast, the layers leave the cast to autocast (peft.helpers.disable_input_dtype_casting): the same loss and
    gradients bit for bit (tests/test_training_speed.py). Without autocast the cast is what makes the dtypes meet,
    and it stays."""
    if not autocast:
        yield
        return
    from peft.helpers import disable_input_dtype_casting

    with disable_input_dtype_casting(model):
        yield


class TokenCounter:
    """Wraps the trainer's collator to count what the training batches compute (every position, and example tokens);
    batches collated while the model is in eval mode (val passes) are not counted."""

    def __init__(self, collate, model):
        self.collate, self.model, self.batch_tokens, self.real_tokens = collate, model, 0, 0

    def __call__(self, examples):
        batch = self.collate(examples)
        if self.model.training:
            self.batch_tokens += batch["input_ids"].numel()
            self.real_tokens += sum(len(e["input_ids"]) for e in examples)
        return batch


def train_adapter(ref: BaseModelRef, runtime: Runtime, cfg: TrainConfig, system: str, train: list[Case],
                  val: list[Case], out_dir: Path, log=print, trust_remote_code: bool = False,
                  max_steps: int | None = None, callbacks: tuple = ()) -> TrainResult:
    """Train and save the adapter (and its loss curve) into out_dir. max_steps, callbacks: for benchmarks."""
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_base(ref, runtime, trust_remote_code)
    plan = None
    if runtime.device == "cuda":
        from training.memory_plan import choose_memory_plan, free_device_bytes, prepare_base

        plan = choose_memory_plan(cfg.memory_plan, parameter_count(model), cfg.per_device_train_batch_size * cfg.max_length,
                                  free_device_bytes())
        log(f"memory plan {plan} (TrainConfig.memory_plan={cfg.memory_plan!r})")
        model = prepare_base(model, plan, cfg.gradient_checkpointing)
    elif runtime.quantized:  # --cpu-4bit
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    else:
        log(f"training on CPU with an unquantized {runtime.precision} base: LoRA, not QLoRA (4-bit on this CPU is ~15x "
            f"slower; --cpu-4bit forces it)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = end_of_turn(tokenizer)
    collator = None
    if cfg.shared_prompt and cfg.padding_free and runtime.device in SHARED_ON:  # the prompt's fixed start once a batch (training/shared_prompt.py)
        model.config._attn_implementation = register_shared_prompt()
        collator = SharedPromptCollator(fixed_prefix_ids(tokenizer, lambda r: render_prompt(tokenizer, messages(system, r))))
    train_ds = build_dataset(tokenizer, system, train, cfg.max_length, cfg.reason_loss_share)
    val_ds = build_dataset(tokenizer, system, val, cfg.max_length)
    steps_per_epoch = math.ceil(len(train_ds) / cfg.per_device_train_batch_size)
    total_steps = math.ceil(steps_per_epoch * cfg.num_train_epochs)
    example_lengths = [len(x) for split in (train_ds, val_ds) for x in split["input_ids"]]
    train_tokens = sum(example_lengths[: len(train_ds)])
    log(f"train: {len(train_ds)} examples, {train_tokens:,} tokens/epoch, {steps_per_epoch} steps/epoch x {cfg.num_train_epochs:g} epochs = {total_steps} steps")

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs and "eval_loss" not in logs:
                return
            elapsed = time.perf_counter() - started
            eta = elapsed / max(state.global_step, 1) * (state.max_steps - state.global_step)
            what = f"loss {logs['loss']:.4f}" if "loss" in logs else f"val loss {logs['eval_loss']:.4f}"
            log(f"step {state.global_step}/{state.max_steps}  {what}  elapsed {elapsed:.0f}s  eta {eta:.0f}s")

    eval_steps = steps_per_epoch  # once an epoch: a val pass costs about 1.5 train steps on CPU
    args = SFTConfig(
        output_dir=str(out_dir / "trainer"),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_train_batch_size,
        warmup_steps=max(1, round(cfg.warmup_ratio * total_steps)),
        lr_scheduler_type=cfg.lr_scheduler_type,
        weight_decay=cfg.weight_decay,
        max_length=None if cfg.padding_free else cfg.max_length,  # cut in build_dataset either way
        padding_free=cfg.padding_free and collator is None,  # TRL's own padding-free collator, else ours packs
        max_steps=max_steps or -1,
        **({"gradient_checkpointing": False} if plan is None else trainer_kwargs(plan, cfg, example_lengths)),
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if max_steps is None else "no",  # a benchmark's short run times the final val pass apart
        eval_steps=eval_steps,
        save_strategy="no",
        report_to=[],
        bf16=runtime.device == "cuda" or runtime.bf16,  # autocast; the LoRA weights stay fp32
        use_cpu=runtime.device == "cpu",
        train_sampling_strategy="group_by_length",
        dataloader_num_workers=0,
        disable_tqdm=True,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, processing_class=tokenizer,
        data_collator=collator, peft_config=lora_config(cfg), callbacks=[Progress(), *callbacks],
    )
    if plan is not None:
        compile_layers(trainer.model, plan)
    trainable, total = trainer.model.get_nb_trainable_parameters()
    log(trainable_line(trainable, total))
    counter = trainer.data_collator = TokenCounter(trainer.data_collator, trainer.model)
    with (head_scores_labelled_positions(runtime.device, log), attention_kernels(runtime.device),
          adapter_inputs_left_to_autocast(trainer.model, args.bf16), layer_graphs(trainer.model, plan, log)):
        train_started = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - train_started
        batch_tokens, real_tokens = counter.batch_tokens, counter.real_tokens
        eval_started = time.perf_counter()
        evals = [h for h in trainer.state.log_history if "eval_loss" in h]
        if not evals or evals[-1]["step"] != trainer.state.global_step:  # else the last epoch's val pass was at the last step
            trainer.evaluate()
        final_eval_s = time.perf_counter() - eval_started
    trainer.model.save_pretrained(str(out_dir))
    history = trainer.state.log_history
    result = TrainResult(
        trainable_params=trainable,
        total_params=total,
        train_loss=[(h["step"], round(h["loss"], 5)) for h in history if "loss" in h],
        val_loss=[(h["step"], round(h["eval_loss"], 5)) for h in history if "eval_loss" in h],
        wall_time_s=time.perf_counter() - started,
        train_tokens=train_tokens,
        steps=trainer.state.global_step,
        train_s=train_s,
        final_eval_s=final_eval_s,
        batch_tokens=batch_tokens,
        real_tokens=real_tokens,
        memory_plan=plan,
    )
    log(f"trained {result.steps} steps in {train_s:.0f}s, {real_tokens / max(train_s, 1e-9):,.0f} example tok/s; "
        f"{batch_tokens:,} positions computed for {real_tokens:,} example tokens (padding {100 * result.padding_share:.1f}%, "
        f"shared prompt start saved {100 * result.shared_share:.1f}%); final val pass {final_eval_s:.0f}s")
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    write_loss_curve(result, out_dir / "loss_curve.png")
    return result


def write_loss_curve(result: TrainResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for label, points in (("train", result.train_loss), ("val", result.val_loss)):
        if points:
            ax.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_title("adapter training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
