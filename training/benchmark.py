"""python -m training.benchmark: how fast and how big QLoRA training is, variants measured side by side in one run.

Part "qwen": a Qwen3-4B-shaped model with random weights (nothing downloaded), saved once to a temp folder, then
reloaded in NF4 for each variant (a fresh model each, so none contaminates the next) and trained for a few steps on
one fixed random batch. Part "smollm": the project's own recipe (training.recipe.train_adapter) on the shipped data.
Part "all" (the default, GPU): every figure the project's speed targets name, in one run, then one summary:
the 4B shape's plain PEFT against the recipe's default and against the recipe with the process capped at 16 GiB,
the default model's recipe against plain PEFT on the shipped data, and the suite's prediction path on the adapter
just trained (fixtures.benchmark: three candidates over 200 prompts, the adapter's decode step against the base's),
and three seeds trained by three `python -m training` processes at once (part "seeds").

    python -m training.benchmark                                # part all: the summary at the end
    python -m training.benchmark --part qwen                    # GPU: plain, lean, fast, fast+compile (+liger if installed)
    python -m training.benchmark --part qwen --tiny --steps 2   # the control flow, on CPU too (no 4-bit there)
    python -m training.benchmark --part smollm --base-model smollm2-135m-instruct --cache-dir DIR
    python -m training.benchmark --part smollm --smollm-configs 'memory_plan=fast;memory_plan=eager;memory_plan=lean'
    python -m training.benchmark --part smollm --profile-steps 61:66   # where a warm step's time goes
    python -m training.benchmark --part seeds --processes 3     # python -m training --seeds 3 in 3 processes at once, wall time
    python -m training.benchmark --part cpu --steps 10           # the recipe's first steps per variant: bf16 against fp32, padded, ...
    python -m training.benchmark --part cpu --steps 6 --cpu-variants recipe --profile-steps 4:5   # where a CPU step's time goes

MFU counts 4 * N_base FLOPs per token: the base is frozen, so a step is the forward (2N) plus the backward through
the activations (2N); no weight gradients of the base, and attention's own FLOPs are left out. N_base is the base
model's parameter count, unquantized (~4.02e9 for the Qwen3-4B shape; the LoRA weights are not in it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from unittest.mock import patch

# --- the model: Qwen3-4B's shape (https://huggingface.co/Qwen/Qwen3-4B config.json), random weights -------------------
QWEN3_4B = dict(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rope_theta=1000000,
                tie_word_embeddings=True, rms_norm_eps=1e-6)
TINY = dict(QWEN3_4B, vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=32)

# --- the step --------------------------------------------------------------------------------------------------------
BATCH_SIZE = 8
SEQ_LEN = 512  # 8 x 512 = 4,096 tokens a step
WARMUP_STEPS = 3  # not timed; the first one's loss is reported as "loss@1"
STEPS = 10  # timed
LEARNING_RATE = 1e-4
SEED = 0
CE_CHUNK = 1024  # tokens per chunk of the chunked loss: 1024 x 151,936 fp32 logits = 0.62 GB instead of 2.5 GB for 4,096
TINY_STEP = dict(batch_size=2, seq_len=128, ce_chunk=64)  # --tiny: CPU-sized (bf16 matmuls are slow there), still 4 loss chunks
# fast+compile: Inductor's activation_memory_budget (1.0 = save what it likes; lower = recompute more). On an H100,
# 1.0: 15,353 tok/s, 26.8 GiB; 0.8: 15,670 tok/s, 19.5 GiB; 0.6: 13,651 tok/s, 13.2 GiB.
COMPILE_MEMORY_BUDGET = 0.8
PEAK_FLOPS = 989e12  # H100 SXM, dense bf16
GIB = 2**30

# --- what the baseline measured before on this shape, and what the new variants aim for -------------------------------
PUBLISHED_PLAIN = "~5,551 tok/s, 69.9 GiB"
LEAN_MAX_GIB = 8.0  # and not slower than plain
FAST_MIN_MFU = 0.25
FAST_MAX_GIB = 24.0

# --- part all: what the project's speed targets name, and the figures they were set against --------------------------
ALL_QWEN_VARIANTS = ("plain", "recipe")
ALL_CAPPED_GIB = 16.0  # a 16 GiB card: the recipe must pick lean and fit
ALL_SMOLLM_CONFIGS = ";memory_plan=plain"  # the recipe's default, then plain PEFT (prepare_model_for_kbit_training)
ALL_PREDICTIONS = ["--prompts", "200", "--batch-size", "auto", "--max-new-tokens", "92", "--sequential", "1",
                   "--candidates", "base,few-shot,fine-tuned"]
ALL_SEED_PROCESSES = 3  # the suite's CUDA default (router_seeds cuda=3), one process per seed as `pytest -n 3` runs them
SEEDS_MAX_S = 60.0  # three seeds side by side, wall
SMOLLM_BEFORE_S = 84.0  # the default model's 123 steps on CUDA before the memory plans; the target is 5x faster
SMOLLM_MIN_SPEEDUP = 5.0
PREDICT_MAX_S = 10.0  # three candidates over 200 prompts, after load (33.6 s before)
DECODE_MAX_RATIO = 1.3  # the adapter's decode step over the bare base's (1.8-2.1x before)

# --- the dequantization micro-benchmark: one MLP up_proj ------------------------------------------------------------
DEQUANT_SHAPE = (2560, 9728)  # in, out
DEQUANT_TOKENS = 4096
DEQUANT_ITERS = 50


@dataclass(frozen=True)
class Bench:
    """What every variant gets: the saved random model, whether to load it in 4-bit, the loss chunk."""
    folder: Path
    quantized: bool
    ce_chunk: int
    tokens_per_step: int = BATCH_SIZE * SEQ_LEN


@dataclass
class Setup:
    """What a variant hands the timing loop: a model ready to train and how to get its loss."""
    model: object
    loss_fn: object  # (model, input_ids, labels) -> scalar loss
    autocast: bool  # run forward and backward under torch.autocast(bfloat16)
    note: str = ""
    fused_adamw: bool = True  # on CUDA
    plan: str = ""  # the recipe's memory plan, where the variant is the recipe
    kernels: object = None  # device_type -> context manager around each step (the recipe's attention_kernels)
    around: object = None  # a context manager around all the steps, as the recipe holds one around trainer.train()


# --- building and loading the model ----------------------------------------------------------------------------------

def write_random_model(shape: dict, folder: Path, device: str) -> None:
    """A Qwen3 of the given shape with random bf16 weights, saved as safetensors (built on the GPU when there is one: fast)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    torch.manual_seed(SEED)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(Qwen3Config(**shape), dtype=torch.bfloat16)
    model.save_pretrained(folder)  # safetensors; the tied lm_head is stored once
    del model
    empty_cache()


def load_base(folder: Path, quantized: bool):
    """The saved model, NF4 on cuda:0 (the project's BitsAndBytesConfig), or bf16 on CPU where there is no CUDA."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.config import TrainConfig, bnb_config

    if quantized:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, quantization_config=bnb_config(TrainConfig()),
                                                     device_map={"": 0}, use_safetensors=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, use_safetensors=True)
    model.config.use_cache = False
    return model


def add_lora(model, log):
    """The project's adapter (TrainConfig: r=16, alpha 32, dropout 0 on q,k,v,o,gate,up,down); LoRA A init seeded."""
    import torch
    from peft import get_peft_model

    from training.config import TrainConfig, lora_config
    from training.recipe import trainable_line

    torch.manual_seed(SEED)
    model = get_peft_model(model, lora_config(TrainConfig()))
    log(trainable_line(*model.get_nb_trainable_parameters()))
    model.train()  # gradient checkpointing and dropout act only in train mode; from_pretrained hands back eval mode
    return model


# --- the two losses --------------------------------------------------------------------------------------------------

def hf_loss(model, input_ids, labels):
    """The model's own loss: the full [batch, seq, vocab] logits, upcast to fp32 inside transformers' loss."""
    return model(input_ids=input_ids, labels=labels, use_cache=False).loss


SFT_HEAD_OUTPUTS = ("log_probs", "entropy", "is_top1")  # what SFTTrainer asks of the fused head (loss and its metrics)


def add_sft_head(model) -> None:
    """What SFTTrainer does to the model the recipe hands it: TRL's fused LM head, which projects only labelled
    positions (on CUDA), in tiles, and never holds the [batch, seq, vocab] logits."""
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model, outputs=SFT_HEAD_OUTPUTS)


def sft_loss(model, input_ids, labels, **inputs):
    """The loss the recipe's trainer computes (SFTTrainer.compute_loss, loss_type nll, no compute_loss_func): the
    fused head's log-probabilities, summed and divided by the labelled tokens; tests/test_training_benchmark.py checks
    it against SFTTrainer.compute_loss on the same batch."""
    out = model(input_ids=input_ids, labels=labels, use_cache=False, fused_lm_head=True, **inputs)
    return -out.log_probs.sum() / out.label_mask.sum().clamp(min=1)


def chunked_loss(model, input_ids, labels, chunk: int = CE_CHUNK):
    """Next-token cross-entropy without the full logits: the decoder's hidden states, then per chunk of tokens the lm_head
    matmul and an fp32 cross-entropy under checkpoint, so only one chunk's logits live at a time, in backward too.
    Same value as hf_loss: the mean over the batch * (seq - 1) predicted tokens."""
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    base = model.get_base_model()  # the Qwen3ForCausalLM inside the PeftModel, LoRA layers injected in place
    hidden = base.model(input_ids=input_ids, use_cache=False).last_hidden_state  # after the final norm
    h = hidden[:, :-1].reshape(-1, hidden.size(-1))
    y = labels[:, 1:].reshape(-1)
    lm_head = base.lm_head

    def ce_sum(h_chunk, y_chunk):
        return F.cross_entropy(lm_head(h_chunk).float(), y_chunk, ignore_index=-100, reduction="sum")

    total = torch.zeros((), dtype=torch.float32, device=h.device)
    for i in range(0, h.size(0), chunk):
        total = total + checkpoint(ce_sum, h[i:i + chunk], y[i:i + chunk], use_reentrant=False)
    return total / (y != -100).sum().clamp(min=1)


# --- the variants: each loads its own fresh model; a docstring's first line is its one-line summary -------------------

def variant_plain(bench: Bench, log) -> Setup:
    """peft's prepare_model_for_kbit_training defaults, full-logits loss (the published baseline).

    Non-4-bit params (norms, embeddings, the tied lm_head) are upcast to fp32, gradient checkpointing is on with
    torch's default (reentrant) checkpoint, and the loss is the model's own over the full fp32 logits."""
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(load_base(bench.folder, bench.quantized))
    if not bench.quantized:  # peft enables checkpointing on k-bit models only; do what it does so the CPU run takes that path
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={})
        model.enable_input_require_grads()
    return Setup(add_lora(model, log), hf_loss, autocast=False)


def variant_plain_eval(bench: Bench, log) -> Setup:
    """plain left in eval mode, as from_pretrained returns it: checkpointing and dropout silently off.

    Not run by default. transformers checkpoints a layer only when module.training is set, so a loop that never calls
    model.train() trains without checkpointing; on an H100 this reproduced the published plain figure (5,723 tok/s,
    58.5 GiB), while plain in train mode measured ~4,000 tok/s and 12 GiB."""
    setup = variant_plain(bench, log)
    setup.model.eval()
    setup.note = "eval mode: no checkpointing"
    return setup


def variant_lean(bench: Bench, log) -> Setup:
    """bf16 norms and embeddings, non-reentrant checkpointing, chunked loss (memory first)."""
    model = load_base(bench.folder, bench.quantized)  # get_peft_model freezes all but the adapters
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return Setup(add_lora(model, log), partial(chunked_loss, chunk=bench.ce_chunk), autocast=True)


def variant_fast(bench: Bench, log) -> Setup:
    """no checkpointing, chunked loss, bf16 compute everywhere (speed first).

    The LoRA weights stay fp32 (AdamW updates of 1e-4 vanish in bf16); autocast runs their matmuls in bf16."""
    model = load_base(bench.folder, bench.quantized)
    return Setup(add_lora(model, log), partial(chunked_loss, chunk=bench.ce_chunk), autocast=True)


def variant_fast_compile(bench: Bench, log) -> Setup:
    """fast with each decoder layer torch.compile'd.

    Inductor fuses what runs between the matmuls (fp32 RMSNorms, RoPE, SwiGLU, LoRA dropout and scaling) and picks what
    to save for backward; the 4-bit matmuls stay bitsandbytes' own. One graph serves all 36 layers; it compiles in the
    first warm-up step."""
    import torch

    torch._dynamo.reset()  # a graph compiled for an earlier model or budget must not be reused
    if hasattr(torch._functorch.config, "activation_memory_budget"):
        torch._functorch.config.activation_memory_budget = COMPILE_MEMORY_BUDGET
    setup = variant_fast(bench, log)
    for layer in setup.model.get_base_model().model.layers:
        layer.compile()
    setup.note = f"memory budget {COMPILE_MEMORY_BUDGET:g}" if COMPILE_MEMORY_BUDGET < 1 else ""
    return setup


def variant_fast_liger(bench: Bench, log) -> Setup:
    """fast with Liger's Triton kernels for RMSNorm, RoPE and SwiGLU.

    They patch transformers' Qwen3 classes for the rest of the process, so this variant runs last."""
    from liger_kernel.transformers import apply_liger_kernel_to_qwen3

    apply_liger_kernel_to_qwen3(rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False)
    setup = variant_fast(bench, log)
    setup.note = "liger rope+rms_norm+swiglu"
    return setup


def variant_recipe(bench: Bench, log) -> Setup:
    """what training/recipe.py runs on CUDA: its memory plan (auto) and its trainer's loss under bf16 autocast.

    The plan comes from training.memory_plan (the recipe's own functions: choose_memory_plan, prepare_base,
    compile_layers) for this model, this batch shape and this process's free memory; the steps run inside the
    recipe's attention_kernels and adapter_inputs_left_to_autocast, as trainer.train() does."""
    import torch

    from training.config import TrainConfig
    from training.memory_plan import (attention_kernels, choose_memory_plan, compile_layers, free_device_bytes,
                                      parameter_count, prepare_base)
    from training.recipe import adapter_inputs_left_to_autocast

    model = load_base(bench.folder, bench.quantized)
    free = free_device_bytes() if torch.cuda.is_available() else 1 << 50
    plan = choose_memory_plan(TrainConfig().memory_plan, parameter_count(model), bench.tokens_per_step, free)
    model = add_lora(prepare_base(model, plan), log)
    add_sft_head(model.get_base_model())  # as SFTTrainer.__init__ does, after PEFT has wrapped the model
    compile_layers(model, plan)
    return Setup(model, sft_loss, autocast=True, note=f"plan {plan} (free {free / GIB:.1f} GiB)", fused_adamw=plan in ("fast", "graphs"),
                 kernels=attention_kernels, plan=plan, around=adapter_inputs_left_to_autocast(model, autocast=True))


VARIANTS = {"plain": variant_plain, "lean": variant_lean, "fast": variant_fast, "fast+compile": variant_fast_compile,
            "fast+liger": variant_fast_liger, "plain-eval": variant_plain_eval, "recipe": variant_recipe}
DEFAULT_VARIANTS = "plain,recipe,lean,fast,fast+compile,fast+liger"


# --- measuring -------------------------------------------------------------------------------------------------------

def empty_cache() -> None:
    import torch

    if "torch._dynamo" in sys.modules:  # compiled graphs hold on to the model they were traced with
        torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def random_batch(vocab_size: int, batch_size: int, seq_len: int, device: str):
    """One fixed batch of uniform random tokens, the same for every variant; labels = input_ids."""
    import torch

    gen = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen).to(device)
    return ids, ids.clone()


def train_steps(setup: Setup, input_ids, labels, warmup: int, steps: int) -> dict:
    """warmup + steps of forward, backward, AdamW on the same batch; only the last `steps` are timed."""
    import torch

    model = setup.model
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel set for the 504 LoRA tensors; the default foreach step took 54 ms against 2.3 ms on an H100
    opt = torch.optim.AdamW(params, lr=LEARNING_RATE, fused=input_ids.is_cuda and setup.fused_adamw)
    device_type = input_ids.device.type
    losses = []

    kernels = setup.kernels or (lambda device_type: nullcontext())

    def step():
        with kernels(device_type):
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=setup.autocast):
                loss = setup.loss_fn(model, input_ids, labels)
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    torch.manual_seed(SEED)  # the same dropout masks at step 1 in every variant
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with setup.around or nullcontext():
        started = time.perf_counter()
        for _ in range(warmup):
            step()
        sync()
        warmup_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        elapsed = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() else float("nan")
    losses = [x.item() for x in losses]
    return {"tok_s": steps * input_ids.numel() / elapsed, "peak_gib": peak, "loss_first": losses[0], "loss_last": losses[-1],
            "step_s": elapsed / steps, "warmup_s": warmup_s}


def run_variant(name: str, bench: Bench, batch, warmup: int, steps: int, log) -> dict:
    import torch

    log(f"--- {name}: {VARIANTS[name].__doc__.splitlines()[0]}")
    try:
        setup = VARIANTS[name](bench, log)
        try:
            trainable, total = setup.model.get_nb_trainable_parameters()  # peft counts a packed 4-bit weight at full size
            row = train_steps(setup, *batch, warmup, steps)
            row.update(note=setup.note, n_base=total - trainable, plan=setup.plan)
        finally:
            del setup
        log(f"{name}: {row['tok_s']:,.0f} tok/s, {row['step_s'] * 1000:.0f} ms/step, peak {row['peak_gib']:.1f} GiB, "
            f"loss {row['loss_first']:.4f} -> {row['loss_last']:.4f} (warm-up {row['warmup_s']:.1f}s)")
    except torch.cuda.OutOfMemoryError:
        row = {"error": f"OOM (peak {torch.cuda.max_memory_allocated() / GIB:.1f} GiB)"}
        log(f"{name}: {row['error']}")
    except Exception as exc:  # one broken variant (a compile, a kernel library) must not cost the others' numbers
        traceback.print_exc()
        row = {"error": f"failed: {type(exc).__name__}", "failed": True}
        log(f"{name}: {row['error']}: {exc}")
    empty_cache()
    return row


def cap_memory(gib: float, log) -> float:
    """Cap this process's CUDA memory at gib (torch.cuda.set_per_process_memory_fraction), as a smaller card would; the
    recipe's plan sees the cap (memory_plan.free_device_bytes). Returns the fraction before."""
    import torch

    before = torch.cuda.get_per_process_memory_fraction(0) if hasattr(torch.cuda, "get_per_process_memory_fraction") else 1.0
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, gib * GIB / total))
    log(f"process capped at {gib:g} GiB of {total / GIB:.1f}")
    return before


@contextmanager
def memory_capped(gib: float, log):
    """cap_memory inside the block only."""
    import torch

    before = cap_memory(gib, log)
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(before)


def time_cuda(fn, iters: int, repeats: int = 5) -> float:
    """Milliseconds per fn() with CUDA events: the median over `repeats` runs of `iters` calls, after 5 warm-up calls."""
    import statistics

    import torch

    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / iters)
    return statistics.median(times)


def dequant_share(log) -> None:
    """One NF4 Linear4bit against a bf16 nn.Linear of the same shape, forward on DEQUANT_TOKENS x in_features bf16."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
    import torch

    fan_in, fan_out = DEQUANT_SHAPE
    torch.manual_seed(SEED)
    dense = torch.nn.Linear(fan_in, fan_out, bias=False, dtype=torch.bfloat16)
    q4 = bnb.nn.Linear4bit(fan_in, fan_out, bias=False, compute_dtype=torch.bfloat16, compress_statistics=True, quant_type="nf4")
    q4.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, compress_statistics=True, quant_type="nf4")
    q4, dense = q4.cuda(), dense.cuda()  # .cuda() quantizes the Params4bit
    x = torch.randn(DEQUANT_TOKENS, fan_in, dtype=torch.bfloat16, device="cuda")
    with torch.inference_mode():
        ms_4bit = time_cuda(lambda: q4(x), DEQUANT_ITERS)
        ms_dense = time_cuda(lambda: dense(x), DEQUANT_ITERS)
        ms_deq = time_cuda(lambda: bnbf.dequantize_4bit(q4.weight.data, q4.weight.quant_state), DEQUANT_ITERS)
    flops = 2 * DEQUANT_TOKENS * fan_in * fan_out
    log(f"dequantization, one up_proj {fan_in}->{fan_out} on a {DEQUANT_TOKENS}x{fan_in} bf16 input "
        f"(median of 5 x {DEQUANT_ITERS} calls):")
    log(f"  Linear4bit NF4  {ms_4bit:.3f} ms ({flops / ms_4bit / 1e9:.0f} TFLOP/s)")
    log(f"  nn.Linear bf16  {ms_dense:.3f} ms ({flops / ms_dense / 1e9:.0f} TFLOP/s)")
    log(f"  dequantize_4bit  {ms_deq:.3f} ms alone = {100 * ms_deq / ms_4bit:.0f}% of the 4-bit forward")
    log(f"  ratio 4-bit / bf16 = {ms_4bit / ms_dense:.2f}x ({ms_4bit - ms_dense:+.3f} ms a layer forward; "
        f"a training step dequantizes each of the 7 x 36 weights twice, forward and backward)\n")


# --- the parts -------------------------------------------------------------------------------------------------------

def part_qwen(args, log=print, names: list[str] | None = None, capped_gib: float | None = None,
              report: dict | None = None) -> int:
    """names: the variants (default --variants); capped_gib: then the recipe once more with the process capped at
    that many GiB; report: gets the rows, by variant name."""
    import torch
    from tabulate import tabulate

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        log("part qwen: torch sees no CUDA device, and the 4B shape needs one; run with --tiny to check the control flow on CPU")
        return 2
    shape = TINY if args.tiny else QWEN3_4B
    step = dict(TINY_STEP) if args.tiny else dict(batch_size=BATCH_SIZE, seq_len=SEQ_LEN, ce_chunk=CE_CHUNK)
    for key in step:  # flags win
        if getattr(args, key) is not None:
            step[key] = getattr(args, key)
    device = "cuda" if cuda else "cpu"
    if cuda and args.memory_cap_gib:  # what a smaller card leaves: the recipe's plan must see it (memory_plan.free_device_bytes)
        cap_memory(args.memory_cap_gib, log)  # for the whole process
    log(f"part qwen: {'tiny' if args.tiny else 'Qwen3-4B'}-shaped Qwen3, random weights, "
        f"{'NF4 on ' + torch.cuda.get_device_name(0) if cuda else 'bf16 on CPU (no CUDA: 4-bit skipped, no memory or MFU figures)'}; "
        f"batch {step['batch_size']} x {step['seq_len']} tokens, loss chunk {step['ce_chunk']}, "
        f"{WARMUP_STEPS} warm-up + {args.steps} timed steps")

    names = list(names or [n.strip() for n in args.variants.split(",") if n.strip()])
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        log(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
        return 2
    if "fast+liger" in names:
        try:
            import liger_kernel  # noqa: F401
        except ImportError:
            log("fast+liger: skipped, liger_kernel is not installed (pip install liger-kernel)")
            names.remove("fast+liger")
        else:
            names = [n for n in names if n != "fast+liger"] + ["fast+liger"]  # it patches classes for good: last

    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        bitsandbytes = None
    if cuda and bitsandbytes:  # first, on an idle GPU
        dequant_share(log)
    elif cuda and not bitsandbytes:
        log("part qwen: bitsandbytes is not importable, and the 4-bit base needs it")
        return 2
    else:
        log("dequantization: skipped, it needs CUDA for bitsandbytes' 4-bit")

    folder = Path(tempfile.mkdtemp(prefix="qwen3-random-", dir=args.tmp_dir))
    try:
        started = time.perf_counter()
        write_random_model(shape, folder, device)
        bench = Bench(folder, quantized=cuda, ce_chunk=step["ce_chunk"], tokens_per_step=step["batch_size"] * step["seq_len"])
        log(f"random model written to {folder} in {time.perf_counter() - started:.0f}s")
        batch = random_batch(shape["vocab_size"], step["batch_size"], step["seq_len"], device)
        rows = {name: run_variant(name, bench, batch, WARMUP_STEPS, args.steps, log) for name in names}
        if cuda and capped_gib:
            with memory_capped(capped_gib, log):
                rows[capped_name(capped_gib)] = run_variant("recipe", bench, batch, WARMUP_STEPS, args.steps, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    base = rows.get("plain", {}).get("tok_s")
    table = []
    for name, r in rows.items():
        if "error" in r:
            table.append([name, "-", "-", "-", "-", "-", "-", r["error"]])
            continue
        mfu = model_flops_utilization(r) if cuda else None
        r["mfu"] = mfu
        table.append([name, f"{r['tok_s']:,.0f}", f"{100 * mfu:.1f}" if cuda else "-",
                      f"{r['peak_gib']:.2f}" if cuda else "-", f"{r['tok_s'] / base:.2f}x" if base else "-",
                      f"{r['loss_first']:.4f}", f"{r['loss_last']:.4f}", r["note"]])
    log("\n" + tabulate(table, headers=["variant", "tok/s", "MFU %", "peak GiB", "vs plain", "loss@1", "loss@last", "note"],
                        disable_numparse=True))
    n_base = next((r["n_base"] for r in rows.values() if "n_base" in r), 0)
    log(f"MFU = tok/s * 4 * N_base / {PEAK_FLOPS:.3g}, N_base = {n_base:,} base parameters unquantized")
    log(f"plain published before on this shape: {PUBLISHED_PLAIN}; plain here trains in train mode (checkpointing on); "
        f"--variants plain-eval leaves it in eval mode, checkpointing off, which matched that figure")
    firsts = [r["loss_first"] for r in rows.values() if "error" not in r]
    if len(firsts) > 1:
        spread = max(firsts) - min(firsts)
        log(f"step-1 loss spread across variants: {spread:.4f} ({'ok' if spread <= 1e-2 else 'MORE than 1e-2: check the losses'})")
    if cuda and not args.tiny:
        for line in target_lines(rows):
            log(line)
    if report is not None:
        report.update(rows)
    return 1 if any(r.get("failed") for r in rows.values()) else 0


def model_flops_utilization(row: dict) -> float:
    """A variant row's MFU: tok/s x 4 x N_base over PEAK_FLOPS (see the top of this file)."""
    return row["tok_s"] * 4 * row["n_base"] / PEAK_FLOPS


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def capped_name(gib: float) -> str:
    return f"recipe, capped {gib:g} GiB"


def seeds_side_by_side(processes: int, base_model: str, cache_dir: Path, tmp_dir: Path | None, log=print,
                       program: tuple[str, ...] = ("-m", "training")) -> dict:
    """`python -m training --seeds N` started N times at once, as `pytest -n N` trains: each process takes the seed no
    other holds, then reuses the others'. A new adapter cache and a new inductor cache (TORCHINDUCTOR_CACHE_DIR) in a
    temp folder, so every seed trains and compiles from nothing; the base model comes from cache_dir.
    Returns wall seconds, each process's return code, and per seed its train_adapter seconds, val loss and how many
    processes trained it (1 each, or the seeds were not shared out). program: what the interpreter runs (tests
    replace the training with a stand-in)."""
    folder = Path(tempfile.mkdtemp(prefix="seeds-", dir=tmp_dir))
    command = [sys.executable, *program, "--seeds", str(processes), "--base-model", base_model,
               "--cache-dir", str(cache_dir), "--adapter-cache", str(folder / "adapters")]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor"), "PYTHONUNBUFFERED": "1"}
    log(f"{processes} processes at once: {' '.join(command[1:])}")
    try:
        started = time.perf_counter()
        running = [subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for _ in range(processes)]
        outputs = [proc.communicate()[0] for proc in running]
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seeds: dict[int, dict] = {}
    for proc, out in zip(running, outputs):
        if proc.returncode != 0 or "\n{" not in out:
            log(f"a process ended with rc {proc.returncode}:\n{out[-2000:]}")
            continue
        summary, _ = json.JSONDecoder().raw_decode(out, out.rindex("\n{") + 1)  # the JSON printed last; a warning may follow
        for seed, info in summary.items():
            row = seeds.setdefault(int(seed), {"trained_by": 0})
            if info["trained_now"]:
                row.update(trained_by=row["trained_by"] + 1, train_adapter_s=info["wall_time_s"],
                           val_loss=info["final_val_loss"])
    log(f"{processes} processes at once: {wall:.1f} s wall; " + "; ".join(
        f"seed {k}: trained by {v['trained_by']} process(es), {v.get('train_adapter_s', '-')} s, val loss "
        f"{v.get('val_loss', '-')}" for k, v in sorted(seeds.items())))
    return {"wall_s": wall, "processes": processes, "rcs": [proc.returncode for proc in running], "seeds": seeds}


def part_seeds(args, log=print, report: dict | None = None) -> int:
    if args.processes < 1:
        log(f"--processes: at least 1, got {args.processes}")
        return 2
    result = seeds_side_by_side(args.processes, args.base_model, args.cache_dir or default_cache_dir(), args.tmp_dir, log)
    if report is not None:
        report.update(result)
    return 0 if seeds_shared_out(result) else 1


def seeds_shared_out(result: dict) -> bool:
    """Every process ended well and every seed was trained by exactly one of them."""
    return (not any(result["rcs"]) and sorted(result["seeds"]) == list(range(result["processes"]))
            and all(v["trained_by"] == 1 for v in result["seeds"].values()))


def part_all(args, log=print) -> int:
    """Every figure the speed targets name, from this one run: part qwen (plain, the recipe, the recipe capped at
    ALL_CAPPED_GIB), part smollm (the recipe's default, keeping its adapter, then plain PEFT), the suite's prediction
    path on that adapter (fixtures.benchmark), part seeds (--processes processes, ALL_SEED_PROCESSES by default), then
    summary_rows."""
    import torch

    if not torch.cuda.is_available():
        log("part all: torch sees no CUDA device; on CPU run --part cpu (training) and python -m fixtures.benchmark")
        return 2
    from fixtures.benchmark import main as predictions_main

    qwen, smollm, predictions, seeds = {}, [], {}, {}
    rc = part_qwen(args, log, names=list(ALL_QWEN_VARIANTS), capped_gib=ALL_CAPPED_GIB, report=qwen)
    adapter = Path(tempfile.mkdtemp(prefix="smollm-adapter-", dir=args.tmp_dir))
    try:
        log("")
        rc = max(rc, part_smollm(args, log, configs=ALL_SMOLLM_CONFIGS, keep=adapter, report=smollm))
        log("\npredictions: the suite's path (fixtures.benchmark) on the adapter just trained")
        cache = args.cache_dir or default_cache_dir()
        rc = max(rc, predictions_main(["--base-model", args.base_model, "--cache-dir", str(cache), "--adapter", str(adapter),
                                       *ALL_PREDICTIONS], report=predictions))
    finally:
        shutil.rmtree(adapter, ignore_errors=True)
    log("")
    rc = max(rc, part_seeds(args, log, report=seeds))
    from tabulate import tabulate

    log(f"\nsummary, every figure from this run ({torch.cuda.get_device_name(0)}):")
    log(tabulate(summary_rows(qwen, smollm, predictions, seeds), headers=["figure", "this run", "beside it in this run", "target", ""],
                 tablefmt="github"))
    return rc


def summary_rows(qwen: dict, smollm: list, predictions: dict, seeds: dict | None = None) -> list[list[str]]:
    """One row per speed target: the figure, what it was measured against in the same run, the target, met or not.
    qwen: part_qwen's rows by variant; smollm: part_smollm's rows (the default first, then plain); predictions:
    fixtures.benchmark's report; seeds: seeds_side_by_side's result. A figure that is missing (a failed variant) is
    reported as missing, never as met."""
    out = []
    plain, recipe, capped = qwen.get("plain", {}), qwen.get("recipe", {}), qwen.get(capped_name(ALL_CAPPED_GIB), {})
    for label, row, target in (("4B shape, recipe default", recipe, f">= {100 * FAST_MIN_MFU:.0f}% MFU within {FAST_MAX_GIB:g} GiB"),
                               (f"4B shape, recipe, process capped at {ALL_CAPPED_GIB:g} GiB", capped, "picks lean and fits")):
        if "tok_s" not in row:
            out.append([label, row.get("error", "missing"), "", target, "MISSED"])
            continue
        mfu = model_flops_utilization(row)
        beside = (f"{row['tok_s'] / plain['tok_s']:.2f}x plain PEFT ({plain['tok_s']:,.0f} tok/s, {plain['peak_gib']:.2f} GiB)"
                  if "tok_s" in plain else "plain: missing")
        ok = (mfu >= FAST_MIN_MFU and row["peak_gib"] <= FAST_MAX_GIB if row is recipe
              else row.get("plan") == "lean" and row["peak_gib"] <= ALL_CAPPED_GIB)
        out.append([f"{label} (plan {row.get('plan') or '?'})", f"{row['tok_s']:,.0f} tok/s, {100 * mfu:.1f}% MFU, "
                    f"{row['peak_gib']:.2f} GiB", beside, target, verdict(ok)])
    default = smollm[0] if smollm else {}
    base = next((r for r in smollm[1:] if r.get("plan") == "plain"), {})
    target = f"<= {SMOLLM_BEFORE_S / SMOLLM_MIN_SPEEDUP:.1f} s ({SMOLLM_MIN_SPEEDUP:g}x faster than {SMOLLM_BEFORE_S:g} s)"
    if "train s" in default:
        beside = (f"plain PEFT {base['train s']:.1f} s ({base['train s'] / default['train s']:.2f}x slower), val loss "
                  f"{base['val loss']:.4f}" if "train s" in base else "plain: missing")
        out.append([f"default model, {default['steps']} steps, trainer.train() (plan {default['plan']})",
                    f"{default['train s']:.1f} s, {default['tok/s']:,} example tok/s, val loss {default['val loss']:.4f}",
                    beside, target, verdict(default["train s"] <= SMOLLM_BEFORE_S / SMOLLM_MIN_SPEEDUP)])
    else:
        out.append(["default model, trainer.train()", "missing", "", target, "MISSED"])
    target = f"<= {SEEDS_MAX_S:g} s"
    if seeds and seeds.get("seeds"):
        each = ", ".join(f"seed {k} {v.get('train_adapter_s', '-')} s (val loss {v.get('val_loss', '-')})"
                         for k, v in sorted(seeds["seeds"].items()))
        out.append([f"{seeds['processes']} seeds, `python -m training` in {seeds['processes']} processes at once, new "
                    f"inductor cache", f"{seeds['wall_s']:.1f} s wall", f"train_adapter: {each}", target,
                    verdict(seeds_shared_out(seeds) and seeds["wall_s"] <= SEEDS_MAX_S)])
    else:
        out.append(["seeds side by side", "missing", "", target, "MISSED"])
    seconds = predictions.get("seconds", {})
    if seconds:
        total = sum(s for s, _, _ in seconds.values())
        each = ", ".join(f"{name} {s:.2f}" for name, (s, _, _) in seconds.items())
        prompts = {n for _, n, _ in seconds.values()}
        out.append([f"{len(seconds)} candidates over {'/'.join(map(str, sorted(prompts)))} prompts, after load",
                    f"{total:.2f} s", each, f"<= {PREDICT_MAX_S:g} s", verdict(total <= PREDICT_MAX_S)])
        if "base" in seconds and "few-shot" in seconds:
            per = {n: seconds[n][0] / seconds[n][1] for n in ("base", "few-shot")}
            out.append(["few-shot per case against base", f"{1000 * per['few-shot']:.1f} ms",
                        f"base {1000 * per['base']:.1f} ms ({per['few-shot'] / per['base']:.2f}x)",
                        "no slower than base (set on CPU)",
                        verdict(per["few-shot"] <= per["base"])])
    else:
        out.append(["predictions", "missing", "", f"<= {PREDICT_MAX_S:g} s", "MISSED"])
    decode = predictions.get("decode")
    if decode:
        ratio = decode["on"] / decode["bare"]
        beside = (f"PEFT's own forward {decode['peft'] / decode['bare']:.2f}x, merged {decode['merged'] / decode['bare']:.2f}x, "
                  f"loaded but off {decode['off'] / decode['bare']:.2f}x")
        once = decode.get("once", {})
        if once.get("on") is not None and once.get("bare") is not None:
            beside += f"; once per batch (eager first step and capture) {once['on']:.0f} ms against {once['bare']:.0f}"
        out.append([f"adapter's decode step over the bare base's, batch {decode['batch']}",
                    f"{ratio:.2f}x ({decode['on']:.2f} ms against {decode['bare']:.2f})", beside,
                    f"<= {DECODE_MAX_RATIO:g}x", verdict(ratio <= DECODE_MAX_RATIO)])
    else:
        out.append(["decode step", "missing", "", f"<= {DECODE_MAX_RATIO:g}x", "MISSED"])
    return out


def target_lines(rows: dict) -> list[str]:
    """Did lean and fast reach what they aim for?"""
    out = []
    plain, lean = rows.get("plain", {}), rows.get("lean", {})
    if "tok_s" in lean:
        ok = lean["peak_gib"] <= LEAN_MAX_GIB and ("tok_s" not in plain or lean["tok_s"] >= plain["tok_s"])
        out.append(f"target lean: <= {LEAN_MAX_GIB:g} GiB and not slower than plain: {verdict(ok)} "
                   f"({lean['peak_gib']:.2f} GiB, {lean['tok_s']:,.0f} tok/s)")
    for name, r in rows.items():
        if (name.startswith("fast") or name == "recipe") and "tok_s" in r:
            ok = r["mfu"] >= FAST_MIN_MFU and r["peak_gib"] <= FAST_MAX_GIB
            out.append(f"target {name}: >= {100 * FAST_MIN_MFU:.0f}% MFU within {FAST_MAX_GIB:g} GiB: {verdict(ok)} "
                       f"({100 * r['mfu']:.1f}%, {r['peak_gib']:.2f} GiB)")
    return out


def parse_overrides(spec: str) -> list[dict]:
    """'memory_plan=fast;memory_plan=lean,per_device_train_batch_size=16' -> one TrainConfig override dict per run,
    each value converted to its field's type. An empty item is the default config."""
    from dataclasses import fields

    from training.config import TrainConfig

    types = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    runs = []
    for item in spec.split(";"):
        overrides = {}
        for pair in filter(None, (x.strip() for x in item.split(","))):
            key, _, value = pair.partition("=")
            if key not in types or not _:
                raise SystemExit(f"--smollm-configs: {pair!r} is not FIELD=VALUE with a TrainConfig field")
            kind = types[key]
            if kind not in (bool, int, float, str):
                raise SystemExit(f"--smollm-configs: {pair!r}: {key} is a {kind.__name__}, not settable here")
            try:
                overrides[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
            except ValueError:
                raise SystemExit(f"--smollm-configs: {pair!r}: {key} takes a {kind.__name__}") from None
        runs.append(overrides)
    return runs


def parse_step_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition(":")
    if not (first.isdigit() and last.isdigit() and 0 < int(first) <= int(last)):
        raise argparse.ArgumentTypeError(f"{text!r} is not FIRST:LAST steps, 0 < FIRST <= LAST")
    return int(first), int(last)


def profile_steps(first: int, last: int, log=print):
    """A TrainerCallback that profiles optimizer steps first..last (after warm-up: the steps users wait for) and logs
    the operators by self CPU time, and by self CUDA time where there is a GPU: on a host-bound step the first table
    says what the host waits on."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()

    class ProfileSteps(TrainerCallback):
        def __init__(self):
            self.profiler = None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step + 1 == first and self.profiler is None:
                activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
                self.profiler = profile(activities=activities)
                self.profiler.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self.profiler is None or state.global_step < last:
                return
            if cuda:
                torch.cuda.synchronize()
            self.profiler.__exit__(None, None, None)
            table = self.profiler.key_averages()
            self.profiler = None
            log(f"profile of steps {first}-{last}, by self CPU time:")
            log(table.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))
            if cuda:
                log(f"profile of steps {first}-{last}, by self CUDA time:")
                log(table.table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=60))

    return ProfileSteps()


def part_smollm(args, log=print, configs: str | None = None, keep: Path | None = None, report: list | None = None) -> int:
    """The project's recipe, as `python -m training` runs it, timed: default TrainConfig (or each of configs, default
    --smollm-configs, one after the other in this process), shipped train and val splits. keep: where the first
    run's adapter is saved (else every adapter goes to a temp folder and is deleted); report: gets the rows."""
    from dataclasses import replace

    import torch

    from evals.dataset import load_splits
    from evals.policy import load_policy
    from fixtures.base_model import pick_runtime, resolve_base_model
    from fixtures.candidates import load_candidates
    from training.build import trained_candidate_system
    from training.config import TrainConfig
    from training.recipe import train_adapter, trainable_line

    if not torch.cuda.is_available():
        log("part smollm: skipped, torch sees no CUDA device (the recipe takes ~15 minutes on this CPU)")
        return 2
    policy = load_policy()
    splits = load_splits(policy)
    system = trained_candidate_system({c.name: c for c in load_candidates(policy, splits["train"])})
    ref = resolve_base_model(args.base_model, args.cache_dir or default_cache_dir())
    runtime = pick_runtime()
    log(f"part smollm: {ref.name} ({ref.path}) on {runtime.label}, {torch.cuda.get_device_name(0)}; "
        f"{len(splits['train'])} train / {len(splits['val'])} val cases")
    rows = []
    for i, overrides in enumerate(parse_overrides(args.smollm_configs if configs is None else configs)):
        cfg = replace(TrainConfig(), **overrides)
        name = ",".join(f"{k}={v}" for k, v in overrides.items()) or "default"
        log(f"\nsmollm [{name}]")
        out_dir = keep if keep is not None and i == 0 else Path(tempfile.mkdtemp(prefix="smollm-adapter-", dir=args.tmp_dir))
        torch.cuda.reset_peak_memory_stats()
        try:
            started = time.perf_counter()
            callbacks = (profile_steps(*args.profile_steps, log),) if args.profile_steps else ()
            result = train_adapter(ref, runtime, cfg, system, splits["train"], splits["val"], out_dir, log=log,
                                   callbacks=callbacks)
            wall = time.perf_counter() - started
        finally:
            if out_dir != keep:
                shutil.rmtree(out_dir, ignore_errors=True)
        seen = result.train_tokens * cfg.num_train_epochs
        rows.append({"config": name, "plan": result.memory_plan, "steps": result.steps, "wall s": round(wall, 1),
                     "train s": round(result.train_s, 1), "tok/s": round(seen / result.train_s),
                     "val loss": result.val_loss[-1][1], "peak GiB": round(torch.cuda.max_memory_allocated() / GIB, 2)})
        log(f"  {trainable_line(result.trainable_params, result.total_params)}")
        log(f"  {rows[-1]}")
    from tabulate import tabulate

    log("\nsmollm, side by side (tok/s: example tokens x epochs over trainer.train(); wall includes load and final eval)")
    log(tabulate(rows, headers="keys", tablefmt="github"))
    if report is not None:
        report.extend(rows)
    return 0


CPU_VARIANTS = {  # name -> TrainConfig overrides; each runs the recipe (train_adapter) itself for --steps steps
    "recipe": dict(),  # on the runtime the suite picks here (bf16 where the CPU has AMX, fixtures/base_model.py)
    "fp32": dict(),  # the recipe on the fp32 runtime; the variants below run on fp32 too
    "bf16": dict(),  # the recipe on the bf16 runtime
    "padded": dict(padding_free=False),
    "prompt-per-example": dict(shared_prompt=False),  # padding-free, each example's prompt start computed in full
    "dropout-0.05": dict(lora_dropout=0.05),
    "every-position": dict(),  # the recipe with TRL's fused head left as it is on CPU (scores every position)
    "before": dict(lora_dropout=0.05),  # the recipe before both changes: dropout 0.05, every position scored
    "adapter-input-cast": dict(),  # the recipe with PEFT casting each adapter input to fp32 under autocast
}
CPU_SWITCHED_OFF = {  # variant -> the recipe's context managers it runs without
    "every-position": ("head_scores_labelled_positions",),
    "before": ("head_scores_labelled_positions",),
    "adapter-input-cast": ("adapter_inputs_left_to_autocast",),
}
CPU_PRECISION = {"recipe": "auto", "bf16": "bf16", "prompt-per-example": "auto",
                 "adapter-input-cast": "auto"}  # the variant's runtime precision; fp32 for any other


def step_timer():
    """A TrainerCallback that splits each step's wall time: batch (collation, before on_step_begin), forward (hooks on
    the model), backward (with TRL's entropy/accuracy metrics on the logits and grad clipping), optimizer, rest."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.parts, self.marks, self.hooked = {}, {}, False

        def _add(self, name, start, end):
            self.parts[name] = self.parts.get(name, 0.0) + end - start

        def on_step_begin(self, args, state, control, model=None, **kw):
            now = time.perf_counter()
            if not self.hooked and model is not None:
                model.register_forward_pre_hook(lambda *a: self.marks.__setitem__("fwd", time.perf_counter()))
                model.register_forward_hook(lambda *a: self.marks.__setitem__("fwd_end", time.perf_counter()))
                self.hooked = True
            if "end" in self.marks:
                self._add("batch", self.marks["end"], now)
            self.marks["begin"] = now

        def on_pre_optimizer_step(self, args, state, control, **kw):
            now = time.perf_counter()
            self._add("forward", self.marks["fwd"], self.marks["fwd_end"])
            self._add("backward", self.marks["fwd_end"], now)
            self.marks["opt"] = now

        def on_optimizer_step(self, args, state, control, **kw):
            self.marks["opt_end"] = time.perf_counter()
            self._add("optimizer", self.marks["opt"], self.marks["opt_end"])

        def on_step_end(self, args, state, control, **kw):
            self.marks["end"] = time.perf_counter()
            self._add("rest", self.marks["opt_end"], self.marks["end"])

    return StepTimer()


def part_cpu(args, log=print) -> int:
    """The recipe's first --steps steps on the default model, per variant, one after the other in one process:
    example tokens per second of trainer.train() (model load and the final val pass excluded), padding share."""
    from dataclasses import replace

    import torch

    from evals.dataset import load_splits
    from evals.policy import load_policy
    from fixtures.base_model import pick_runtime, resolve_base_model
    from fixtures.candidates import load_candidates
    from training.build import trained_candidate_system
    from training import recipe
    from training.config import TrainConfig
    from training.recipe import train_adapter

    policy = load_policy()
    splits = load_splits(policy)
    system = trained_candidate_system({c.name: c for c in load_candidates(policy, splits["train"])})
    ref = resolve_base_model(args.base_model, args.cache_dir or default_cache_dir())
    log(f"part cpu: {ref.name}, {torch.get_num_threads()} torch threads, {args.steps} steps per variant; the recipe's "
        f"runtime here: {pick_runtime().label}")
    if args.glibc_default_allocator:
        from fixtures import cpu_memory

        cpu_memory._done = False  # as if already tried and not taken: load_base leaves the allocator alone
    log(f"glibc allocator: {'default' if args.glibc_default_allocator else 'keeps freed memory (fixtures/cpu_memory.py)'}")
    names = [n.strip() for n in args.cpu_variants.split(",") if n.strip()]
    if unknown := [n for n in names if n not in CPU_VARIANTS]:
        log(f"--cpu-variants: unknown {unknown}; choose from {list(CPU_VARIANTS)}")
        return 2
    rows = []
    for name in names:
        cfg = replace(TrainConfig(), **CPU_VARIANTS[name])
        runtime = pick_runtime(cpu_precision=CPU_PRECISION.get(name, "fp32"))
        out_dir = Path(tempfile.mkdtemp(prefix="cpu-bench-", dir=args.tmp_dir))
        timer = step_timer()
        callbacks = (timer,) + ((profile_steps(*args.profile_steps, log),) if args.profile_steps else ())
        try:
            with ExitStack() as switched_off:
                for attr in CPU_SWITCHED_OFF.get(name, ()):
                    switched_off.enter_context(patch.object(recipe, attr, lambda *a, **k: nullcontext()))
                r = train_adapter(ref, runtime, cfg, system, splits["train"], splits["val"], out_dir, log=lambda *a: None,
                                  max_steps=args.steps, callbacks=callbacks)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        log(f"{name}: " + ", ".join(f"{k} {v / r.steps:.2f}s" for k, v in timer.parts.items()) + " per step")
        rows.append([name, runtime.precision, r.steps, f"{r.train_s:.1f}", f"{r.train_s / r.steps:.2f}", f"{r.real_tokens / r.train_s:,.0f}",
                     f"{r.batch_tokens / r.train_s:,.0f}", f"{100 * r.padding_share:.1f}%", f"{100 * r.shared_share:.1f}%",
                     f"{r.train_loss[-1][1]:.4f}" if r.train_loss else "-", f"{r.val_loss[-1][1]:.4f}", f"{r.final_eval_s:.1f}"])
        log("  ".join(map(str, rows[-1])))
    from tabulate import tabulate

    log(tabulate(rows, headers=["variant", "precision", "steps", "train s", "s/step", "example tok/s", "batch tok/s", "padding", "shared start saved",
                                "last train loss", f"val loss after {args.steps}", "val pass s"], tablefmt="github"))
    return 0


def default_cache_dir() -> Path:
    """Where `python -m training` caches (platformdirs), or ~/.cache/router-evals where platformdirs is not installed."""
    try:
        from platformdirs import user_cache_path
    except ImportError:
        return Path.home() / ".cache" / "router-evals"
    return user_cache_path("router-evals")


def parse_args(argv=None) -> argparse.Namespace:
    from fixtures.base_model import DEFAULT_NAME

    p = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("qwen", "smollm", "cpu", "seeds", "all"), default="all",
                   help="which benchmark to run (all, GPU: every figure the speed targets name, one summary; see the top)")
    p.add_argument("--cpu-variants", default=",".join(CPU_VARIANTS), help=f"cpu part: from {','.join(CPU_VARIANTS)}")
    p.add_argument("--glibc-default-allocator", action="store_true",
                   help="cpu part: leave glibc's allocator as it is instead of fixtures/cpu_memory.py's setting (process-wide, "
                        "so compare two runs of the same variants)")
    p.add_argument("--processes", type=int, default=ALL_SEED_PROCESSES,
                   help="seeds part: this many processes of `python -m training --seeds N` at once")
    p.add_argument("--steps", type=int, default=STEPS, help="timed steps per variant (after %d warm-up steps)" % WARMUP_STEPS)
    p.add_argument("--tiny", action="store_true", help="a tiny Qwen3 shape instead of 4B; runs on CPU (no 4-bit there)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help=f"comma-separated, from {','.join(VARIANTS)} (default {DEFAULT_VARIANTS})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"sequences per step (default {BATCH_SIZE}; --tiny {TINY_STEP['batch_size']})")
    p.add_argument("--seq-len", type=int, default=None,
                   help=f"tokens per sequence (default {SEQ_LEN}; --tiny {TINY_STEP['seq_len']})")
    p.add_argument("--ce-chunk", type=int, default=None,
                   help=f"tokens per chunk of the chunked loss (default {CE_CHUNK}; --tiny {TINY_STEP['ce_chunk']})")
    p.add_argument("--memory-cap-gib", type=float, default=None,
                   help="qwen part: cap this process's CUDA memory (torch.cuda.set_per_process_memory_fraction)")
    p.add_argument("--tmp-dir", type=Path, default=None,
                   help="where the random model (8 GB for the 4B shape) and the adapter go (default: system temp)")
    p.add_argument("--base-model", default=DEFAULT_NAME, help="smollm and seeds parts: local folder or the default name")
    p.add_argument("--cache-dir", type=Path, default=None, help="smollm and seeds parts: cache root (default: as python -m training)")
    p.add_argument("--profile-steps", type=parse_step_range, default=None, metavar="FIRST:LAST",
                   help="smollm and cpu parts: profile the recipe's steps FIRST..LAST (torch.profiler, CPU and CUDA) and print "
                        "where their time went")
    p.add_argument("--smollm-configs", default="",
                   help="smollm part: ';'-separated runs, each ','-separated TrainConfig FIELD=VALUE overrides "
                        "(e.g. 'memory_plan=fast;memory_plan=eager'); empty: the default config once")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' gradient_checkpointing_enable rename
    warnings.filterwarnings("ignore", message=".*use_reentrant.*")  # plain keeps torch's default on purpose
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    for name in ("peft", "trl", "bitsandbytes"):
        try:
            versions[name] = __import__(name).__version__
        except Exception as exc:  # bitsandbytes can fail to import for reasons other than absence
            versions[name] = f"unavailable ({type(exc).__name__})"
    print(", ".join(f"{k} {v}" for k, v in versions.items()))
    return {"qwen": part_qwen, "smollm": part_smollm, "cpu": part_cpu, "seeds": part_seeds, "all": part_all}[args.part](args)


if __name__ == "__main__":
    sys.exit(main())
