"""How the recipe trains on CUDA: 'graphs' or 'fast' when it fits, 'lean' when memory is short, by one rule on model
size and free memory. CPU runs ignore it (unquantized LoRA, no checkpointing).

Plans (measured by `python -m training.benchmark --part qwen` at the Qwen3-4B shape, 8 x 512 tokens, H100):
- graphs: fast's bf16 base and fused AdamW, and every decoder layer of a step in one CUDA graph: a forward graph and a
  backward graph replayed each training step, a forward-only graph each val batch (training/layer_graph.py), the
  layers themselves uncompiled. Every batch is padded to one length, the longest batch the data can make
  (`graph_length`), so each graph is captured once. In a padding-free row the padding is one more packed stretch of
  unlabelled tokens that attends only to itself: the loss is the same (tests/test_padding_free.py). For models under
  GRAPHS_MAX_PARAMS, whose step is bound by the host launching kernels, not by the GPU (the default 135M model: 2.37 s
  of CPU for 86 ms of GPU work over six steps, README "Training"), so the padding (27% of the default model's batch
  tokens) costs GPU time that was idle. Measured on the default model, 123 steps of `trainer.train()` on an H200 side
  by side in one process (`python -m training.benchmark --part smollm`, fresh inductor cache): 13.6 s, val loss 0.5167;
  the same stack graph over torch.compile'd layers 21.7 s (0.5157: compiling cost what replaying saved); each compiled
  layer replayed as its own graph (torch.compile "reduce-overhead", this plan until then) 21.5 s (0.5157).
- fast: no gradient checkpointing, bf16 norms and embeddings (no fp32 upcast), each decoder layer torch.compile'd
  (Inductor activation_memory_budget 0.8), fused AdamW. 19.5 GiB peak, 3.6x plain's tok/s.
- eager: fast without the compile (for a small model, where compiling each padding-free shape may cost more than
  it saves; compared by `python -m training.benchmark --part smollm --smollm-configs ...`).
- lean: non-reentrant gradient checkpointing, no fp32 upcast. 5.5 GiB peak, 1.2x plain.
- plain: peft's prepare_model_for_kbit_training (fp32 norms and embeddings), checkpointing as TrainConfig says.

The rule: fast when its estimated peak fits free device memory with a 25% margin, otherwise lean; graphs instead of
fast for a model under GRAPHS_MAX_PARAMS parameters.
  fast peak ~= FAST_GIB_PER_BPARAM_4K * (parameters / 1e9) * (tokens per step / 4096)    (19.46 GiB / 4.02B at 4,096)
             + HEAD_TILE_GIB   (the trainer's loss is TRL's fused LM head: [4,096 tokens x 32,768 vocab] tiles, never the
                                full logits; the benchmark's 19.46 GiB was measured with a chunked loss of that kind)
Tokens per step is bounded by batch size x max_length. At the 4B shape that is 19.5 + 0.8 = 20.2 GiB -> 25.3 GiB with
the margin: fast on an 80 GiB H100, lean under a 16 GiB cap. The default 135M model needs about 1.4 GiB: graphs.
"""

from __future__ import annotations

from contextlib import contextmanager

PLANS = ("auto", "graphs", "fast", "eager", "lean", "plain")
GRAPHS_MAX_PARAMS = 1_000_000_000  # below this a step is launch-bound; above it graphs buy little and hold a pool per shape
GRAPH_ROUND = 64  # the graphs plan's batch length is rounded up to a multiple of this many tokens
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
    if fast_peak_gib(n_params, tokens_per_step) * MARGIN * GIB > free_bytes:
        return "lean"
    return "graphs" if n_params < GRAPHS_MAX_PARAMS else "fast"


def prepare_base(model, plan: str, gradient_checkpointing: bool = False):
    """The quantized base before LoRA is added: plain upcasts and maybe checkpoints (peft's helper); lean checkpoints
    without the reentrant autograd function; fast, eager and graphs leave the model as loaded."""
    if plan == "plain":
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if plan == "lean":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def compile_layers(peft_model, plan: str) -> None:
    """fast: compile each decoder layer (one compiled graph serves all of them), after LoRA is in place."""
    if plan != "fast":
        return
    import torch

    torch._dynamo.reset()
    if hasattr(torch._functorch.config, "activation_memory_budget"):
        torch._functorch.config.activation_memory_budget = COMPILE_MEMORY_BUDGET
    for layer in peft_model.get_base_model().model.layers:
        layer.compile()


@contextmanager
def layer_graphs(peft_model, plan: str, log=print):
    """graphs: while inside, the decoder's layers run as one CUDA graph a step (training/layer_graph.py); a no-op for
    the other plans (and on CPU, where no plan applies)."""
    if plan != "graphs":
        yield
        return
    from training.layer_graph import layers_in_one_graph

    with layers_in_one_graph(peft_model.get_base_model().model, log) as graphed:
        yield
    if graphed is not None:
        log(f"graphs plan: {graphed.replays} replays of {len(graphed.graphs)} layer-stack graphs; layers run one by one "
            f"for: {graphed.eager_calls or 'no call'}")


def graph_length(lengths: list[int], batch_size: int, padding_free: bool) -> int:
    """The one batch length of the graphs plan: the longest batch these examples can make (a padding-free row holds at
    most the batch_size longest; a padded batch is as long as its longest), rounded up to GRAPH_ROUND."""
    longest = sorted(lengths, reverse=True)
    bound = sum(longest[:batch_size]) if padding_free else longest[0]
    return -(-bound // GRAPH_ROUND) * GRAPH_ROUND


def trainer_kwargs(plan: str, cfg, lengths: list[int] = ()) -> dict:
    """SFTConfig fields that follow the plan; lengths: every example's tokens (train and val), for graphs."""
    if plan == "plain":
        return {"gradient_checkpointing": cfg.gradient_checkpointing}
    if plan == "lean":
        return {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
    fast = {"gradient_checkpointing": False, "optim": "adamw_torch_fused"}
    if plan == "graphs":
        return {**fast, "pad_to_multiple_of": graph_length(lengths, cfg.per_device_train_batch_size, cfg.padding_free)}
    return fast


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
