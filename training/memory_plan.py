"""How the recipe trains on CUDA: 'fast' when it fits, 'lean' when memory is short, by one rule on model size and free
memory. CPU runs ignore it (fp32 LoRA, no checkpointing).

Plans (measured by `python -m training.benchmark --part qwen` at the Qwen3-4B shape, 8 x 512 tokens, H100):
- fast: no gradient checkpointing, bf16 norms and embeddings (no fp32 upcast), each decoder layer torch.compile'd
  (Inductor activation_memory_budget 0.8), fused AdamW. 19.5 GiB peak, 3.6x plain's tok/s.
- eager: fast without the compile (for a small model, where compiling each padding-free shape may cost more than
  it saves; compared by `python -m training.benchmark --part smollm --smollm-configs ...`).
- lean: non-reentrant gradient checkpointing, no fp32 upcast. 5.5 GiB peak, 1.2x plain.
- plain: peft's prepare_model_for_kbit_training (fp32 norms and embeddings), checkpointing as TrainConfig says.

The rule: fast when its estimated peak fits free device memory with a 25% margin, otherwise lean.
  fast peak ~= FAST_GIB_PER_BPARAM_4K * (parameters / 1e9) * (tokens per step / 4096)    (19.46 GiB / 4.02B at 4,096)
             + HEAD_TILE_GIB   (the trainer's loss is TRL's fused LM head: [4,096 tokens x 32,768 vocab] tiles, never the
                                full logits; the benchmark's 19.46 GiB was measured with a chunked loss of that kind)
Tokens per step is bounded by batch size x max_length. At the 4B shape that is 19.5 + 0.8 = 20.2 GiB -> 25.3 GiB with
the margin: fast on an 80 GiB H100, lean under a 16 GiB cap. The default 135M model needs about 1.4 GiB: always fast.
"""

from __future__ import annotations

from contextlib import contextmanager

PLANS = ("auto", "fast", "eager", "lean", "plain")
FAST_GIB_PER_BPARAM_4K = 19.46 / 4.02
HEAD_TILE_GIB = 4096 * 32768 * (2 + 4) / 2**30  # one bf16 projection tile and its fp32 softmax work, 0.75 GiB
MARGIN = 1.25
COMPILE_MEMORY_BUDGET = 0.8
GIB = 2**30


def fast_peak_gib(n_params: int, tokens_per_step: int) -> float:
    return (FAST_GIB_PER_BPARAM_4K * n_params / 1e9 * tokens_per_step / 4096
            + HEAD_TILE_GIB)


def choose_memory_plan(requested: str, n_params: int, tokens_per_step: int, free_bytes: int) -> str:
    """The plan to run: the requested one, or for 'auto' fast when its estimated peak (x MARGIN) fits free_bytes."""
    if requested not in PLANS:
        raise ValueError(f"TrainConfig.memory_plan must be one of {PLANS}, got {requested!r}")
    if requested != "auto":
        return requested
    return "fast" if fast_peak_gib(n_params, tokens_per_step) * MARGIN * GIB <= free_bytes else "lean"


def prepare_base(model, plan: str, gradient_checkpointing: bool = False):
    """The quantized base before LoRA is added: plain upcasts and maybe checkpoints (peft's helper); lean checkpoints
    without the reentrant autograd function; fast leaves the model as loaded."""
    if plan == "plain":
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if plan == "lean":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def compile_layers(peft_model, plan: str) -> None:
    """fast (not eager): compile each decoder layer (one graph serves all of them), after LoRA is in place."""
    if plan != "fast":
        return
    import torch

    torch._dynamo.reset()
    if hasattr(torch._functorch.config, "activation_memory_budget"):
        torch._functorch.config.activation_memory_budget = COMPILE_MEMORY_BUDGET
    for layer in peft_model.get_base_model().model.layers:
        layer.compile()


def trainer_kwargs(plan: str, cfg) -> dict:
    """SFTConfig fields that follow the plan."""
    if plan == "plain":
        return {"gradient_checkpointing": cfg.gradient_checkpointing}
    if plan == "lean":
        return {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
    return {"gradient_checkpointing": False, "optim": "adamw_torch_fused"}


def free_device_bytes(device: int = 0) -> int:
    """Free memory on the device as this process may use it: the driver's free bytes, capped by a per-process memory
    fraction (torch.cuda.set_per_process_memory_fraction) minus what this process already holds."""
    import torch

    free, total = torch.cuda.mem_get_info(device)
    fraction = torch.cuda.get_per_process_memory_fraction(device) if hasattr(torch.cuda, "get_per_process_memory_fraction") else 1.0
    return int(min(free, fraction * total - torch.cuda.memory_reserved(device)))


def parameter_count(model) -> int:
    """Unquantized parameter count: a bitsandbytes 4-bit weight stores two values per element."""
    return sum(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1) for p in model.parameters())


@contextmanager
def attention_kernels(device_type: str):
    """CUDA: scaled_dot_product_attention runs on the flash, memory-efficient or math kernels, not cuDNN's. Padding-free
    batches change shape at every step, and cuDNN builds an execution plan per shape on the CPU: in a profile of the
    default model's steps on an H200 its forward and backward took 2.3 and 2.5 ms of CPU per layer call, 36% of a
    step's CPU time, for 0.2 ms of GPU work (README, "Training")."""
    if device_type != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        yield
