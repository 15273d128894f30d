"""One training config, and the small converters from it to the objects the libraries take."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainConfig:
    # --- quantized base (QLoRA); used on CUDA, and on CPU only with --cpu-4bit ---
    load_in_4bit: bool = field(default=True, metadata={"help": "Load the frozen base in 4-bit when quantizing."})
    bnb_4bit_quant_type: str = field(default="nf4", metadata={"help": "4-bit data type: NF4."})
    bnb_4bit_use_double_quant: bool = field(default=True, metadata={"help": "Quantize the quantization constants too."})
    bnb_4bit_compute_dtype: str = field(default="bfloat16", metadata={"help": "Matmul dtype of the 4-bit layers."})

    # --- LoRA adapter ---
    lora_r: int = field(default=16, metadata={"help": "Rank of each adapter."})
    lora_alpha: int = field(default=32, metadata={"help": "Adapter scale numerator (scale = alpha / r = 2)."})
    # 0: a dropout mask per element of every adapter input cost about 30% of a CPU step (README, "Training"); the val
    # loss without it is inside the seed spread of the 0.05 the recipe used before.
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter input."})
    target_modules: tuple[str, ...] = field(default=LORA_TARGETS, metadata={"help": "Projections that get adapters."})

    # --- optimisation ---
    # Tuned on the default model by `python -m training.sweep` (README, "Training"): val loss and val exact
    # match after 3 epochs were 1.56 / 0% at lr 2e-4 batch 16, 0.80 / 25% at 1e-3 batch 16, 0.65 / 44% at
    # 1e-3 batch 8, and best at 2e-3 batch 8: 0.58 / 69% (208 examples -> 26 steps an epoch, 78 in all).
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak AdamW learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the train split."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Sequences per optimizer step."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Linear warm-up share of the steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Decay after warm-up."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay on adapter weights."})
    max_length: int = field(default=512, metadata={"help": "Longest training sequence, in tokens."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in backward (saves memory, costs time)."})
    padding_free: bool = field(default=True, metadata={"help": "Concatenate a batch's examples into one row with per-example "
                                                        "position_ids (attention stays within each example): no pad tokens computed."})
    shared_prompt: bool = field(default=True, metadata={"help": "CPU, padding-free: a batch holds the examples' shared prompt "
                                                         "start once (training/shared_prompt.py); the same loss, fewer tokens."})
    memory_plan: str = field(default="auto", metadata={"help": "CUDA only: 'auto' (graphs or fast when its estimated peak "
                                                     "fits free memory, else lean; training/memory_plan.py), 'graphs', 'fast', "
                                                     "'eager', 'lean' or 'plain'."})
    # --- what the loss holds ---
    reason_loss_share: float = field(default=1.0, metadata={"help": "Share of train examples whose free-text reason "
                                                             "tokens count in the loss (chosen by case id); the decision "
                                                             "fields and the closing tokens always count."})
    seed: int = field(default=0, metadata={"help": "Seed for adapter init, dropout and data order."})
    logging_steps: int = field(default=4, metadata={"help": "Log train loss every N steps (val loss once an epoch)."})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def bnb_config(cfg: TrainConfig):
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=cfg.load_in_4bit,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=cfg.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, cfg.bnb_4bit_compute_dtype),
    )


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
