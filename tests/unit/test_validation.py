"""Bad input fails before any work starts, naming the key, the value and what is allowed."""

import pytest
from celine_testing import compose

from celine import validation
from celine.errors import ConfigError


def plan(overrides, conf=None):
    return validation.plan(compose(overrides, conf))


def test_valid_preset_gives_typed_groups(toy_conf):
    p = plan(["task=toy"], toy_conf)
    assert (p.task.name, p.method.name, p.model.name) == ("toy", "toy_fit", "toy_linear")
    assert p.method_cfg.steps == 20 and isinstance(p.method_cfg.lr, float)
    assert p.hardware.device == "cpu"


def test_unknown_key_names_the_key_and_the_allowed_keys(toy_conf):
    with pytest.raises(ConfigError) as err:
        plan(["task=toy", "+method.stepz=3"], toy_conf)
    msg = str(err.value)
    assert "method.stepz" in msg and "steps" in msg and "lr" in msg


def test_wrong_type_names_key_value_and_type(toy_conf):
    with pytest.raises(ConfigError) as err:
        plan(["task=toy", "method.steps=many"], toy_conf)
    msg = str(err.value)
    assert "method.steps" in msg and "many" in msg and "int" in msg


def test_method_the_task_does_not_accept_lists_the_ones_it_does(toy_conf):
    with pytest.raises(ConfigError) as err:
        plan(["task=toy", "method=unigram"], toy_conf)
    msg = str(err.value)
    assert "unigram" in msg and "toy_fit" in msg and "toy_fail" in msg


def test_preset_keys_leaking_into_a_swapped_method_are_caught():
    # the lm_pretrain preset's method keys must not silently ride along into another method
    with pytest.raises(ConfigError, match="method.smoothing"):
        plan(["task=lm_pretrain", "method=evaluate", "+method.smoothing=2.0"])


def test_missing_model_path_is_named():
    with pytest.raises(ConfigError) as err:
        plan(["task=lm_pretrain", "method=evaluate", "model=hf", "model.path=/no/such/checkpoint"])
    assert "model.path" in str(err.value) and "/no/such/checkpoint" in str(err.value)


def test_missing_local_corpus_is_named():
    with pytest.raises(ConfigError) as err:
        plan(["task=lm_pretrain", "model.corpus=jsonl", "model.data_root=/no/such.jsonl"])
    assert "model.data_root" in str(err.value) and "/no/such.jsonl" in str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("hardware.device=tpu", "hardware.device"),
        ("hardware.dtype=int3", "hardware.dtype"),
        ("model.size=huge", "model.size"),
        ("seed=-1", "seed"),
        ("tracking.backend=wandb", "tracking.backend"),
    ],
)
def test_out_of_range_values_are_named(override, key):
    with pytest.raises(ConfigError) as err:
        plan(["task=lm_pretrain", override])
    assert key in str(err.value)
    assert "expected" in str(err.value)


def test_optimized_metric_must_be_one_the_task_declares():
    with pytest.raises(ConfigError) as err:
        plan(["task=lm_pretrain", "optimized_metric=accuracy"])
    assert "optimized_metric" in str(err.value) and "test/perplexity" in str(err.value)
    assert plan(["task=lm_pretrain", "optimized_metric=test/perplexity"]).task.name == "lm_pretrain"
