"""The training benchmark's smollm part runs the recipe once per TrainConfig override set; the sets parse strictly."""

import pytest

from training.benchmark import parse_overrides


def test_each_run_is_a_set_of_typed_overrides():
    assert parse_overrides("") == [{}]
    assert parse_overrides("memory_plan=fast;memory_plan=eager,per_device_train_batch_size=16,"
                           "learning_rate=0.003,padding_free=false") == [
        {"memory_plan": "fast"},
        {"memory_plan": "eager", "per_device_train_batch_size": 16, "learning_rate": 0.003, "padding_free": False},
    ]


@pytest.mark.parametrize("spec", ["batch=16", "memory_plan", "per_device_train_batch_size=many", "target_modules=q_proj"])
def test_a_bad_override_is_named(spec):
    with pytest.raises(SystemExit, match="smollm-configs: '" + spec):
        parse_overrides(spec)
