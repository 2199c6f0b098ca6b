import pytest

from celine import registry
from celine.api import MetricSpec


def test_discover_finds_rooms_and_builtin_models():
    registry.discover()
    assert "lm_pretrain" in registry.TASKS
    assert {"pretrain", "evaluate", "unigram"} <= set(registry.TASKS["lm_pretrain"].methods)
    assert {"tiny_llama", "tiny_reasoner", "hf"} <= set(registry.MODELS)


def test_registration_is_lazy_and_resolution_imports_on_demand():
    # an impl that does not exist must not fail at registration, only when resolved
    registry.register_method("lazy_probe", impl="no_such_module_xyz:Nope", config="x:Y")
    with pytest.raises(ModuleNotFoundError):
        registry.resolve(registry.METHODS["lazy_probe"].impl)
    del registry.METHODS["lazy_probe"]


def test_conflicting_registration_is_refused():
    registry.register_method("dup_probe", impl="a:B", config="a:C")
    try:
        registry.register_method("dup_probe", impl="a:B", config="a:C")  # identical: fine
        with pytest.raises(ValueError, match="registered twice"):
            registry.register_method("dup_probe", impl="other:B", config="a:C")
    finally:
        del registry.METHODS["dup_probe"]


def test_task_must_declare_a_metric_and_primary_defaults_to_first():
    with pytest.raises(ValueError, match="at least one metric"):
        registry.register_task("empty_probe", impl="a:B", config="a:C", metrics=[], methods=["x"])
    spec = registry.TaskSpec("t", "a:B", "a:C", (MetricSpec("m1", "min"), MetricSpec("m2")), ("x",))
    assert spec.primary.name == "m1"


def test_every_registered_config_resolves_to_a_dataclass():
    registry.discover()
    import dataclasses

    for table in (registry.TASKS, registry.METHODS, registry.MODELS):
        for spec in table.values():
            if spec.config.startswith(("toy_room", "a:", "x:")):
                continue
            assert dataclasses.is_dataclass(registry.resolve(spec.config)), spec
