"""Settings are checked at configure time: a bad ini value or option is a usage error naming the key and the range."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture
def project(pytester):
    pytester.makeconftest('pytest_plugins = ["fixtures.options"]')
    pytester.makepyfile(test_things="""
        import pytest

        def test_plain():
            pass

        @pytest.mark.gate
        def test_gate():
            pass
    """)
    return pytester


def ini(project, **values):
    lines = "\n".join(f"{k} = {v}" for k, v in values.items())
    project.makeini(f"[pytest]\npythonpath = {ROOT}\nmarkers =\n    gate: g\n    policy: p\n    bias: b\n{lines}\n")


@pytest.mark.parametrize("key, value, message", [
    ("router_batch_size_cpu", "abc", "ini router_batch_size_cpu: expected an integer from 1 to 4096, got 'abc'"),
    ("router_batch_size_cpu", "0", "ini router_batch_size_cpu: expected an integer from 1 to 4096, got '0'"),
    ("router_batch_size_cpu", "-3", "ini router_batch_size_cpu: expected an integer from 1 to 4096, got '-3'"),
    ("router_batch_size_cuda", "0", "ini router_batch_size_cuda: expected 'auto' or a positive integer, got '0' (allowed: 'auto' or 1 to 4096)"),
    ("router_leak_jaccard", "1.5", "ini router_leak_jaccard: expected a number in (0, 1], got '1.5'"),
    ("router_leak_jaccard", "0", "ini router_leak_jaccard: expected a number in (0, 1], got '0'"),
    ("router_leak_jaccard", "nan", "ini router_leak_jaccard: expected a number in (0, 1], got 'nan'"),
    ("router_max_new_tokens", "0", "ini router_max_new_tokens: expected 'auto' or an integer from 1 to 4096, got '0'"),
    ("router_max_new_tokens", "many", "ini router_max_new_tokens: expected 'auto' or an integer from 1 to 4096, got 'many'"),
    ("router_cpu_precision", "fp16", "ini router_cpu_precision: expected one of auto, fp32, bf16, got 'fp16'"),
    ("router_min_rule_examples", "train=x", "ini router_min_rule_examples: expected space-separated SPLIT=N *got 'train=x'*"),
    ("router_min_rule_examples", "dev=3", "ini router_min_rule_examples: expected space-separated SPLIT=N *got 'dev=3'*"),
    ("router_min_rule_examples", "train", "ini router_min_rule_examples: expected space-separated SPLIT=N *got 'train'*"),
    ("router_seeds", "cpu=0", "ini router_seeds (cpu): expected a whole number of seeds from 1 to 32, got '0'"),
    # values that used to be accepted and quietly mean something else (rule coverage off, the last seed count wins)
    ("router_min_rule_examples", "", "ini router_min_rule_examples: expected space-separated SPLIT=N *got '': an empty value "
                                     "would turn rule coverage off; write 'train=0 val=0 test=0' if that is meant"),
    ("router_seeds", "cpu=1 cpu=2", "ini router_seeds: device 'cpu' given twice in 'cpu=1 cpu=2'; give each device once"),
    ("router_seeds", "tpu=2", "ini router_seeds: unknown device 'tpu'*"),
    ("router_gate_alpha", "0.7", "ini router_gate_alpha: expected a number in (0.0, 0.5], got '0.7'"),
    ("router_gate_field_margin", "-1", "ini router_gate_field_margin: expected a number in ?0.0, 1.0?, got '-1'"),
    ("router_gate_rule_margin", "x", "ini router_gate_rule_margin: expected a number in ?0.0, 1.0?, got 'x'"),
])
def test_bad_ini_value_is_a_usage_error(project, key, value, message):
    ini(project, **{key: value})
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_good_values_pass(project):
    ini(project, router_batch_size_cpu="16", router_leak_jaccard="1", router_max_new_tokens="64",
        router_min_rule_examples="train=0 val=2")
    project.runpytest().assert_outcomes(passed=2)


def test_max_new_tokens_auto_passes(project):
    ini(project, router_max_new_tokens="auto")
    project.runpytest().assert_outcomes(passed=2)


def test_cache_dir_that_is_a_file(project):
    ini(project)
    (project.path / "cache").write_text("not a folder")
    result = project.runpytest("--cache-dir", "cache")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cache-dir cache is a file, not a folder*"])


@pytest.mark.parametrize("args, message", [
    (["--update-expectations", "--cases", "x.jsonl"], "*--update-expectations records the test split's decisions; it cannot act with --cases*"),
    (["--retrain", "--no-train"], "*--retrain and --no-train contradict each other*"),
    (["--seeds", "0"], "*--seeds: expected a whole number of seeds from 1 to 32, got 0*"),
])
def test_update_option_where_it_cannot_act(project, args, message):
    ini(project)
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])

