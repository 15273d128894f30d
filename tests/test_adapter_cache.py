"""The adapter cache: keyed by content, published atomically, rebuilt when damaged, built once under xdist."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evals.dataset import Case
from training.adapter_cache import AdapterNotCached, MANIFEST, adapter_key, check_adapter, ensure_adapter, key_inputs

ROOT = Path(__file__).parent.parent


def case(id_="fin_001", request="Finance wants an app that updates vendor records.", platform="Databricks app"):
    expected = {"tier": "Trusted Technical Builder", "risk": "high", "recommended_platform": platform, "needs_review": True, "reason": "r."}
    return Case(id_, request, expected, ("custom-build",), "train", "train.jsonl", 1)


def inputs(**over):
    base = dict(train=[case()], val=[case("fin_002", "Another request.")], config={"lr": 1e-3}, base_identity="gguf-sha256:abc",
                runtime_label="cpu-fp32", prompt_template={"system": "s", "chat_template": "t"})
    base.update(over)
    return key_inputs(**base)


def fake_trainer(calls):
    def train_into(folder: Path) -> dict:
        calls.append(folder)
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        (folder / "adapter_config.json").write_text("{}")
        return {"wall_time_s": 1.0, "trainable_params": 1, "total_params": 2}
    return train_into


def test_key_changes_with_every_input_that_shapes_the_adapter():
    key = adapter_key(inputs())
    assert adapter_key(inputs()) == key
    changed = [
        inputs(train=[case(platform="Databricks app + Salesforce integration")]),  # one label
        inputs(train=[case(request="Finance wants an app that updates vendor records!")]),  # one request
        inputs(config={"lr": 2e-4}),
        inputs(base_identity="gguf-sha256:abd"),
        inputs(runtime_label="cuda-nf4-bf16"),
        inputs(prompt_template={"system": "s2", "chat_template": "t"}),
    ]
    assert len({adapter_key(i) for i in changed} | {key}) == len(changed) + 1


def test_key_ignores_row_order():
    two = [case(), case("fin_003", "Third.")]
    assert adapter_key(inputs(train=two)) == adapter_key(inputs(train=two[::-1]))


def test_trains_once_then_reuses(tmp_path):
    calls = []
    first = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None)
    second = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None)
    assert first.trained_now and not second.trained_now and len(calls) == 1
    assert second.path == first.path and json.loads((first.path / MANIFEST).read_text())["key"] == first.key


def test_retrain_and_no_train(tmp_path):
    calls = []
    with pytest.raises(AdapterNotCached, match="--no-train"):
        ensure_adapter(tmp_path, inputs(), fake_trainer(calls), no_train=True, log=lambda _: None)
    ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None)
    again = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), retrain=True, run_id="run-1", log=lambda _: None)
    assert again.trained_now and len(calls) == 2
    # The same run asking again (another xdist worker) reuses what it just trained.
    assert not ensure_adapter(tmp_path, inputs(), fake_trainer(calls), retrain=True, run_id="run-1", log=lambda _: None).trained_now


def test_a_failed_training_leaves_nothing_that_looks_like_an_adapter(tmp_path):
    def crash(folder):
        (folder / "adapter_model.safetensors").write_bytes(b"half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        ensure_adapter(tmp_path, inputs(), crash, log=lambda _: None)
    key = adapter_key(inputs())
    assert not (tmp_path / key[:32]).exists()
    assert ensure_adapter(tmp_path, inputs(), fake_trainer([]), log=lambda _: None).trained_now


def start_slow_build(cache: Path) -> subprocess.Popen:
    """Another process building an adapter into `cache`, stopped in the middle of training (a half-written file)."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_adapter_cache import inputs
        from training.adapter_cache import ensure_adapter
        def slow(folder):
            (folder / "adapter_model.safetensors").write_bytes(b"half")
            print("training", flush=True)
            time.sleep(60)
        ensure_adapter({str(cache)!r}, inputs(), slow, log=lambda _: None)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "training"
    return proc


def test_a_killed_training_is_not_mistaken_for_an_adapter(tmp_path):
    """SIGKILL in the middle of training: the half-written temp folder is ignored and training runs again."""
    proc = start_slow_build(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    key = adapter_key(inputs())
    assert check_adapter(tmp_path / key[:32], key) is not None
    calls = []
    info = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None)
    assert info.trained_now and len(calls) == 1


@pytest.mark.parametrize("damage", ["delete", "corrupt", "manifest"])
def test_a_damaged_adapter_is_rebuilt(tmp_path, damage):
    calls = []
    info = ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None)
    target = info.path / ("adapter_model.safetensors" if damage != "manifest" else MANIFEST)
    if damage == "delete":
        target.unlink()
    else:
        target.write_bytes(b"garbage")
    assert check_adapter(info.path, info.key) is not None
    assert ensure_adapter(tmp_path, inputs(), fake_trainer(calls), log=lambda _: None).trained_now and len(calls) == 2


def test_under_xdist_exactly_one_worker_trains(pytester):
    pytester.makeini(f"[pytest]\npythonpath = {ROOT}\n")
    pytester.makepyfile(test_two=f"""
        import time, pytest
        from pathlib import Path
        from tests.test_adapter_cache import inputs
        from training.adapter_cache import ensure_adapter

        CACHE = Path({str(pytester.path)!r}) / "cache"

        def train_into(folder):
            with open(CACHE.parent / "trainings.log", "a") as f:
                f.write("trained\\n")
            time.sleep(2)
            (folder / "adapter_model.safetensors").write_bytes(b"w")
            return {{}}

        @pytest.mark.parametrize("n", range(4))
        def test_uses_adapter(n):
            info = ensure_adapter(CACHE, inputs(), train_into, log=lambda _: None)
            assert (info.path / "adapter_model.safetensors").read_bytes() == b"w"
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=4)
    assert (pytester.path / "trainings.log").read_text().count("trained") == 1
