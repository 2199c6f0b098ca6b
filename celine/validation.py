"""Check a composed config before any work starts.

Every group is merged into its typed schema (a dataclass): unknown keys, wrong types, a method the
task does not accept, and missing local paths all fail here with the key, the value and what is
allowed. Only the schema modules are imported, never torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from celine import registry
from celine.errors import ConfigError, MissingValue
from celine.registry import MethodSpec, ModelSpec, TaskSpec
from celine.schema import HardwareConfig, TrackingConfig


@dataclass
class Plan:
    """A validated run: the specs the registry resolved and each group as a typed object."""

    task: TaskSpec
    method: MethodSpec
    model: ModelSpec
    task_cfg: Any
    method_cfg: Any
    model_cfg: Any
    hardware: HardwareConfig
    tracking: TrackingConfig
    seed: int


def _choice(cfg: DictConfig, group: str, table: dict, what: str) -> str:
    node = cfg.get(group)
    if node is None or "name" not in node:
        allowed = ", ".join(sorted(table)) or "(none registered)"
        raise ConfigError(group, None, f"choose a {what}: {allowed}", f"e.g. {group}=<name>")
    name = node.name
    if name not in table:
        raise ConfigError(f"{group}.name", name, "registered: " + ", ".join(sorted(table)))
    return name


def typed(group: str, node: Any, schema: type, owner: str) -> Any:
    """Merge `node` into the dataclass `schema` and build it, with errors that name the key."""
    try:
        if isinstance(node, DictConfig):
            # resolve against the whole config first: a preset may tie a group's key to a
            # top-level one (`task.data_seed: ${seed}`), which the detached node cannot see
            node = OmegaConf.to_container(node, resolve=True)
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        return OmegaConf.to_object(merged)
    except ConfigError as err:
        # raised by the schema's __post_init__; make the key absolute
        if not err.key.startswith(f"{group}."):
            err = ConfigError(f"{group}.{err.key}", err.value, err.allowed)
        raise err from None
    except ConfigKeyError as err:
        allowed = ", ".join(f.name for f in schema.__dataclass_fields__.values())
        key = f"{group}.{err.key}" if err.key else group
        raise ConfigError(key, "<unknown key>", f"{owner} accepts only: {allowed}") from None
    except ValidationError as err:
        field = schema.__dataclass_fields__.get(str(err.key))
        expected = getattr(field.type, "__name__", field.type) if field else "?"
        raise ConfigError(f"{group}.{err.key}", err.value, f"{owner} expects {expected}") from None
    except MissingMandatoryValue as err:
        key = f"{group}.{err.key}" if err.key else group
        raise MissingValue(key, f"{owner} needs it", f"e.g. {key}=...") from None
    except OmegaConfBaseException as err:
        raise ConfigError(group, getattr(err, "key", None), str(err).splitlines()[0]) from None


def plan(cfg: DictConfig) -> Plan:
    registry.discover()
    task_name = _choice(cfg, "task", registry.TASKS, "task")
    task = registry.TASKS[task_name]
    method_name = _choice(cfg, "method", registry.METHODS, "method")
    if method_name not in task.methods:
        raise ConfigError(
            "method",
            method_name,
            f"task '{task_name}' accepts the methods " + ", ".join(task.methods),
        )
    method = registry.METHODS[method_name]
    model_name = _choice(cfg, "model", registry.MODELS, "model")
    model = registry.MODELS[model_name]
    if method.models is not None and model_name not in method.models:
        raise ConfigError(
            "model",
            model_name,
            f"method '{method_name}' works with the models " + ", ".join(method.models),
        )

    objective = cfg.get("optimized_metric")
    if objective is not None and objective not in {m.name for m in task.metrics}:
        declared = ", ".join(m.name for m in task.metrics)
        raise ConfigError("optimized_metric", objective, f"task '{task_name}' declares {declared}")

    return Plan(
        task=task,
        method=method,
        model=model,
        task_cfg=typed("task", cfg.task, registry.resolve(task.config), f"task '{task_name}'"),
        method_cfg=typed(
            "method", cfg.method, registry.resolve(method.config), f"method '{method_name}'"
        ),
        model_cfg=typed(
            "model", cfg.model, registry.resolve(model.config), f"model '{model_name}'"
        ),
        hardware=typed("hardware", cfg.hardware, HardwareConfig, "hardware"),
        tracking=typed("tracking", cfg.tracking, TrackingConfig, "tracking"),
        seed=_seed(cfg),
    )


def _seed(cfg: DictConfig) -> int:
    seed = cfg.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError("seed", seed, "expected a non-negative integer")
    return seed
