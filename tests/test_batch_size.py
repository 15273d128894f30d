"""The CUDA batch size fitted to the device: KV cache bytes from the config, a power of two within the memory share."""

from pathlib import Path

import pytest

from fixtures.batch_size import KV_SHARE, MAX_BATCH, fit_batch_size, kv_bytes_per_token

ROOT = Path(__file__).parent.parent
H100_BYTES = 85_045_854_208  # what torch reports as an H100 80GB's total memory


def qwen3_4b():
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                       num_attention_heads=32, num_key_value_heads=8, head_dim=128)


def smollm2_135m():
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                       num_key_value_heads=3)


def test_kv_bytes_per_token_counts_keys_and_values_of_every_layer():
    assert kv_bytes_per_token(qwen3_4b()) == 2 * 36 * 8 * 128 * 2
    assert kv_bytes_per_token(smollm2_135m()) == 2 * 30 * 3 * 64 * 2  # head_dim from hidden_size / heads


@pytest.mark.parametrize(("config", "tokens", "expected"), [
    (smollm2_135m, 2_600, MAX_BATCH),  # a long few-shot prompt still fills the cap on the small model
    (qwen3_4b, 2_600, 64),  # 147 KiB a token: 64 sequences of 2,600 tokens take 24.5 GB of the 34 GB share
    (qwen3_4b, 700, MAX_BATCH),
])
def test_fit_batch_size_on_an_h100(config, tokens, expected):
    batch = fit_batch_size(kv_bytes_per_token(config()), tokens, H100_BYTES)
    assert batch == expected
    assert batch * kv_bytes_per_token(config()) * tokens <= KV_SHARE * H100_BYTES


def test_fit_batch_size_is_a_power_of_two_and_at_least_one():
    sizes = [fit_batch_size(1_000, tokens, 10**9) for tokens in (1, 100, 1_000, 10_000, 10**6, 10**9)]
    assert sizes == [256, 256, 256, 32, 1, 1]
    assert all(s & (s - 1) == 0 for s in sizes)


def test_a_bad_ini_batch_size_is_a_usage_error(pytester):
    pytester.makeini(f"[pytest]\npythonpath = {ROOT}\nrouter_batch_size_cuda = lots\n")
    pytester.makeconftest('pytest_plugins = ["fixtures.options"]')
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*router_batch_size_cuda: expected 'auto' or a positive integer, got 'lots'*"])


def test_choose_batch_size_takes_the_ini_value_and_fits_only_on_cuda_auto(monkeypatch):
    from types import SimpleNamespace

    import fixtures.batch_size as batch_size

    monkeypatch.setattr(batch_size, "cuda_batch_size", lambda model, tokenizer, fixed, new: 128)
    monkeypatch.setattr(batch_size, "sequence_tokens", lambda tokenizer, fixed, new: 400)
    cpu = SimpleNamespace(runtime=SimpleNamespace(device="cpu"), model=None, tokenizer=None)
    cuda = SimpleNamespace(runtime=SimpleNamespace(device="cuda"), model=None, tokenizer=None)
    assert batch_size.choose_batch_size(cpu, "prompt", 128, cpu=8, cuda=None) == 8
    assert batch_size.choose_batch_size(cuda, "prompt", 128, cpu=8, cuda=64) == 64
    assert batch_size.choose_batch_size(cuda, "prompt", 128, cpu=8, cuda=None) == 128


@pytest.mark.parametrize(("tokens", "cap", "expected"), [
    (1_969, 32, 32),  # the few-shot candidate on the default model: 1,621 prompt + 256 request + 92 answer tokens
    (2_191, 32, 16),  # few-shot+schema: its constrained budget is 314 new tokens
    (1_090, 32, 32),  # base: 742 prompt tokens
    (1_090, 64, 32),
    (422, 32, 32),  # fine-tuned: 74 prompt tokens; the ini value caps it
    (422, 8, 8),
    (10**6, 32, 1),
])
def test_cpu_batch_size_shrinks_for_long_prompts(tokens, cap, expected):
    from fixtures.batch_size import cpu_batch_size

    assert cpu_batch_size(tokens, cap) == expected
