"""Every task preset composes and validates; command-line choices beat the preset
(the lightning-hydra-template config tests, with the schema check added)."""

import pytest
from celine_testing import compose
from omegaconf import OmegaConf

from celine import configs, registry, validation
from celine.commands.validate import check_all
from celine.errors import ConfigError

TASKS = configs.options("task")


@pytest.mark.parametrize("task", TASKS)
def test_task_preset_composes_and_validates(task):
    cfg = compose([f"task={task}"])
    assert not OmegaConf.missing_keys(cfg), OmegaConf.missing_keys(cfg)
    p = validation.plan(cfg)
    assert p.task.name == task and p.method.name in p.task.methods


@pytest.mark.parametrize("hardware", configs.options("hardware"))
def test_every_hardware_preset_validates(hardware):
    validation.plan(compose(["task=lm_pretrain", f"hardware={hardware}"]))


def test_validate_command_reports_every_preset():
    assert [name for name, _ in check_all(TASKS)] == TASKS
    assert all(error is None for _, error in check_all(TASKS))


def test_command_line_choices_beat_the_preset():
    cfg = compose(["task=lm_pretrain", "method=unigram", "model=tiny_reasoner", "model.size=smoke"])
    assert cfg.method.name == "unigram" and cfg.model.name == "tiny_reasoner"
    assert cfg.model.corpus == "reasoning" and cfg.model.size == "smoke"


def test_model_presets_validate_where_they_need_no_local_path():
    """Every model preset type-checks against its schema (a task preset that uses it checks the
    rest; not every model fits every task's method)."""
    registry.discover()
    for model in configs.options("model"):
        if model == "hf":
            continue  # needs model.path
        node = compose(["task=lm_pretrain", f"model={model}"]).model
        schema = registry.resolve(registry.MODELS[model].config)
        validation.typed("model", node, schema, f"model '{model}'")


def test_tracking_uri_is_absolute_by_default(outputs):
    cfg = compose(["task=lm_pretrain"])
    assert cfg.paths.outputs == str(outputs)


@pytest.mark.parametrize("experiment", configs.options("experiment"))
def test_experiment_presets_compose_on_their_own(experiment, tmp_path):
    cfg = compose([f"experiment={experiment}"])
    assert not OmegaConf.missing_keys(cfg)
    try:
        p = validation.plan(cfg)
    except ConfigError as err:
        # only a local data or model path may be left to the user: give it a folder
        assert err.key.endswith(("data_root", "path")), err
        p = validation.plan(compose([f"experiment={experiment}", f"{err.key}={tmp_path}"]))
    assert p.method.name in p.task.methods
