"""Settings that used to be accepted and quietly mean something else are usage errors (issue #29 item 4), and
`python -m training` reads the ini settings the dataset gate uses, from pyproject.toml, flags overriding them."""

import shutil
from pathlib import Path

import pytest

import training.__main__ as training_main
from evals.gate import GateSettings
from fixtures.base_model import Runtime
from tests.test_options_validation import ini, project  # noqa: F401  (project is a fixture)

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("option", ["--cache-dir", "--base-model", "--adapter-cache", "--cases"])
def test_an_empty_option_is_a_usage_error_not_the_default(project, option):
    ini(project)
    result = project.runpytest(option, "")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}: given an empty value ''; give a value, or leave the option out for the default*"])


# python -m training ------------------------------------------------------------------------------------------------

PYPROJECT = """
[tool.pytest.ini_options]
router_data_dir = "mydata"
router_base_model = "my-org/my-model"
router_seeds = "cpu=2 cuda=4"
router_leak_jaccard = "0.9"
router_min_rule_examples = "train=1 val=1 test=0"
router_cpu_precision = "fp32"
"""


@pytest.fixture
def training_run(tmp_path, monkeypatch):
    """Run `python -m training` in tmp_path with everything past the settings replaced; what it was given."""
    monkeypatch.chdir(tmp_path)
    seen: dict = {}

    def pick_runtime(require_gpu=False, cpu_4bit=False, cpu_precision="auto"):
        seen["cpu_precision"] = cpu_precision
        return Runtime("cpu", False)

    def resolve_base_model(spec, cache_dir, log=print):
        seen["base_model"], seen["cache_dir"] = spec, Path(cache_dir)
        return "ref"

    def build_seeds(settings, policy, splits, candidates, ref, runtime, seeds, **kwargs):
        seen.update(gate=settings.gate, seeds=seeds, adapter_cache=Path(settings.adapter_cache),
                    split_paths={cases[0].path for cases in splits.values()})
        return {}

    monkeypatch.setattr(training_main, "pick_runtime", pick_runtime)
    monkeypatch.setattr(training_main, "resolve_base_model", resolve_base_model)
    monkeypatch.setattr(training_main, "build_seeds", build_seeds)
    monkeypatch.setattr(training_main, "load_candidates", lambda policy, train: [])

    def run(*argv: str, pyproject: str | None = PYPROJECT) -> int:
        if pyproject is not None:
            (tmp_path / "pyproject.toml").write_text(pyproject)
            data = tmp_path / "mydata"
            if not data.exists():
                data.mkdir()
                for split in ("train", "val", "test"):
                    shutil.copy(ROOT / "evals" / "data" / f"{split}.jsonl", data)
        seen["exit"] = training_main.main(list(argv))
        return seen
    return run


def test_training_reads_the_ini_settings_the_gate_uses(training_run):
    seen = training_run("--cache-dir", "cache")
    assert seen["exit"] == 0
    assert seen["split_paths"] == {"mydata/train.jsonl", "mydata/val.jsonl", "mydata/test.jsonl"}
    assert seen["gate"] == GateSettings(leak_jaccard=0.9, minimums=(("train", 1), ("val", 1), ("test", 0)))
    assert (seen["base_model"], seen["seeds"], seen["cpu_precision"]) == ("my-org/my-model", 2, "fp32")
    assert seen["adapter_cache"] == Path("cache") / "adapters"


def test_training_flags_override_the_ini(training_run):
    seen = training_run("--cache-dir", "cache", "--base-model", "other/model", "--seeds", "3", "--cpu-precision", "bf16")
    assert (seen["base_model"], seen["seeds"], seen["cpu_precision"]) == ("other/model", 3, "bf16")


def test_training_without_a_pyproject_uses_the_defaults(training_run):
    seen = training_run("--cache-dir", "cache", pyproject=None)
    assert seen["exit"] == 0
    assert seen["gate"] == GateSettings()
    assert (seen["base_model"], seen["seeds"], seen["cpu_precision"]) == ("smollm2-135m-instruct", 1, "auto")
    assert seen["split_paths"] == {str(ROOT / "evals" / "data" / f"{s}.jsonl") for s in ("train", "val", "test")}


@pytest.mark.parametrize("argv, setting, message", [
    ((), ('router_seeds = "cpu=2 cuda=4"', 'router_seeds = "cpu=1 cpu=2"'), "ini router_seeds: device 'cpu' given twice"),
    ((), ('router_min_rule_examples = "train=1 val=1 test=0"', 'router_min_rule_examples = ""'),
     "ini router_min_rule_examples: expected space-separated SPLIT=N"),
    ((), ('router_leak_jaccard = "0.9"', 'router_leak_jaccard = "2"'), "ini router_leak_jaccard: expected a number in (0, 1], got '2'"),
    (("--cache-dir", ""), None, "--cache-dir: given an empty value ''"),
    (("--base-model", " "), None, "--base-model: given an empty value ' '"),
    (("--seeds", "0"), None, "--seeds: expected a whole number of seeds from 1 to 32, got 0"),
])
def test_training_refuses_a_bad_setting_before_it_starts(training_run, capsys, argv, setting, message):
    pyproject = PYPROJECT.replace(*setting) if setting else PYPROJECT
    seen = training_run(*(argv or ("--cache-dir", "cache")), pyproject=pyproject)
    assert seen["exit"] == 2 and "gate" not in seen
    assert f"python -m training: {message}" in capsys.readouterr().err
