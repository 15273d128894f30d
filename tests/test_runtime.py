"""The runtime a session runs on (fixtures/base_model.py pick_runtime): NF4 on CUDA; on the CPU bf16 where AMX
multiplies bf16 tiles, else fp32, unless the precision is given; and what the bf16 runtime loads and trains."""

import pytest

import fixtures.base_model as base_model
from fixtures.base_model import BaseModelError, BaseModelRef, Runtime, cpu_has_amx_bf16, load_base, pick_runtime

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n\nprocessor\t: 1\n"
ZEN3 = "processor\t: 0\nflags\t\t: fpu avx2 fma\nbugs\t\t: amx_bf16_is_not_here\n"


@pytest.mark.parametrize("cpuinfo, expected", [(SAPPHIRE_RAPIDS, True), (ZEN3, False), (None, False)])
def test_amx_is_read_from_the_flags_line(tmp_path, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    assert cpu_has_amx_bf16(path) is expected


@pytest.mark.parametrize("amx, precision, label", [
    (True, "auto", "cpu-bf16"), (False, "auto", "cpu-fp32"), (True, "fp32", "cpu-fp32"), (False, "bf16", "cpu-bf16"),
])
def test_cpu_precision_rule(monkeypatch, amx, precision, label):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(base_model, "cpu_has_amx_bf16", lambda: amx)
    assert pick_runtime(cpu_precision=precision).label == label
    assert pick_runtime(cpu_4bit=True, cpu_precision=precision).label == "cpu-nf4-bf16"
    with pytest.raises(BaseModelError, match="'fp16': expected one of auto, fp32, bf16"):
        pick_runtime(cpu_precision="fp16")


def test_the_bf16_runtime_loads_bf16_and_trains_fp32_lora_weights(tiny_model_dir, splits, tmp_path):
    import torch
    from safetensors.torch import load_file

    from training.config import TrainConfig
    from training.recipe import train_adapter

    ref, runtime = BaseModelRef("tiny", tiny_model_dir, "sha256:tiny"), Runtime("cpu", False, True)
    model, _ = load_base(ref, runtime)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    result = train_adapter(ref, runtime, TrainConfig(), "Route it.", splits["train"][:16], splits["val"][:4], tmp_path,
                           log=lambda *a: None, max_steps=2)
    assert result.steps == 2 and all(loss == loss for _, loss in result.train_loss + result.val_loss)
    weights = load_file(tmp_path / "adapter_model.safetensors")
    assert weights and {w.dtype for w in weights.values()} == {torch.float32}


@pytest.mark.parametrize("flags, kernels", [
    ("fpu avx2 avx512f amx_bf16 amx_tile", "amx"), ("fpu avx2 avx512f avx512_bf16", "avx512"), ("fpu sse4_2 avx2", "avx2"),
    ("fpu sse4_2", "other"),
])
def test_the_kernels_class_is_the_widest_matrix_instructions_in_cpuinfo(tmp_path, flags, kernels):
    """Part of every prediction's identity: a record is strict only on the class of CPU that made it."""
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert base_model.cpu_kernels(path) == kernels
    assert base_model.cpu_kernels(tmp_path / "missing") == "other"
