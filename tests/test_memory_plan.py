"""The recipe's CUDA memory plan: fast when it fits, lean when memory is short, an override wins."""

import pytest

from training.memory_plan import GIB, GRAPH_ROUND, choose_memory_plan, fast_peak_gib, graph_length

QWEN3_4B = dict(n_params=4_022_468_096, tokens_per_step=8 * 512)
SMOLLM2 = dict(n_params=134_515_008, tokens_per_step=8 * 512)


def test_fast_on_an_h100_lean_under_a_16_gib_cap():
    assert choose_memory_plan("auto", **QWEN3_4B, free_bytes=78 * GIB) == "fast"
    assert choose_memory_plan("auto", **QWEN3_4B, free_bytes=16 * GIB) == "lean"


def test_a_small_model_gets_cuda_graphs_when_it_fits():
    assert choose_memory_plan("auto", **SMOLLM2, free_bytes=16 * GIB) == "graphs"
    assert choose_memory_plan("auto", **SMOLLM2, free_bytes=GIB // 2) == "lean"
    assert choose_memory_plan("fast", **SMOLLM2, free_bytes=16 * GIB) == "fast"


def test_the_estimate_grows_with_model_and_tokens():
    assert 19.46 < fast_peak_gib(**QWEN3_4B) < 24  # the benchmark's fast+compile peak with a chunked loss, plus the head's tiles
    assert fast_peak_gib(**{**QWEN3_4B, "tokens_per_step": 2 * 4096}) > 2 * 19.46


def test_an_explicit_plan_wins_and_a_typo_is_named():
    assert choose_memory_plan("plain", **QWEN3_4B, free_bytes=1) == "plain"
    with pytest.raises(ValueError, match="memory_plan must be one of"):
        choose_memory_plan("fastest", **QWEN3_4B, free_bytes=1)


def test_attention_kernels_leave_cudnn_out_on_cuda_only():
    import torch

    from training.memory_plan import attention_kernels

    before = torch.backends.cuda.cudnn_sdp_enabled()
    with attention_kernels("cpu"):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before
    with attention_kernels("cuda"):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.backends.cuda.math_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_the_graphs_length_holds_any_batch_of_the_data():
    lengths = [100, 90, 300, 10, 250]
    assert graph_length(lengths, 2, padding_free=True) == 576  # 300 + 250 = 550, rounded up to 64s
    assert graph_length(lengths, 2, padding_free=False) == 320  # the longest example
    assert graph_length([GRAPH_ROUND], 8, padding_free=True) == GRAPH_ROUND
