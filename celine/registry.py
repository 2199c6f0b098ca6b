"""Lazy registries of tasks, methods and models.

Entries are strings ("module:attr") resolved only when a run needs them, so that listing and
validating never import torch (the lm-evaluation-harness pattern). Rooms register themselves in
their package `__init__`, and so do the substrates their model families (`celine.llm`: tiny_llama,
tiny_reasoner, hf; `celine.vision`: small_cnn); `discover()` imports those light `__init__`
modules by name, and any installed plugin that declares the entry point group `celine.plugins`.
Core never imports a substrate or a room itself (tests/unit/test_import_graph.py checks it).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal


@dataclass(frozen=True)
class MetricSpec:
    """A metric a task reports; `goal` says which direction is better (None: informational)."""

    name: str
    goal: Literal["max", "min"] | None = None
    unit: str = ""
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    impl: str
    config: str
    metrics: tuple[MetricSpec, ...]
    methods: tuple[str, ...]
    description: str = ""
    primary_metric: str | None = None

    @property
    def primary(self) -> MetricSpec:
        name = self.primary_metric or self.metrics[0].name
        return next(m for m in self.metrics if m.name == name)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    impl: str
    config: str
    description: str = ""
    requires: frozenset[str] = field(default_factory=frozenset)
    models: tuple[str, ...] | None = None  # None: any model


@dataclass(frozen=True)
class ModelSpec:
    name: str
    impl: str
    config: str
    description: str = ""


TASKS: dict[str, TaskSpec] = {}
METHODS: dict[str, MethodSpec] = {}
MODELS: dict[str, ModelSpec] = {}


def _put(table: dict, spec: Any) -> None:
    old = table.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"'{spec.name}' is registered twice, as {old.impl} and {spec.impl}")
    table[spec.name] = spec


def register_task(
    name: str,
    *,
    impl: str,
    config: str,
    metrics: list[MetricSpec] | tuple[MetricSpec, ...],
    methods: list[str] | tuple[str, ...],
    description: str = "",
    primary_metric: str | None = None,
) -> None:
    if not metrics:
        raise ValueError(f"task '{name}' must declare at least one metric")
    _put(
        TASKS,
        TaskSpec(name, impl, config, tuple(metrics), tuple(methods), description, primary_metric),
    )


def register_method(
    name: str,
    *,
    impl: str,
    config: str,
    description: str = "",
    requires: tuple[str, ...] = (),
    models: list[str] | tuple[str, ...] | None = None,
) -> None:
    models = tuple(models) if models is not None else None
    _put(METHODS, MethodSpec(name, impl, config, description, frozenset(requires), models))


def register_model(name: str, *, impl: str, config: str, description: str = "") -> None:
    _put(MODELS, ModelSpec(name, impl, config, description))


def resolve(target: str) -> Any:
    """Import "package.module:attr" and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


# the substrates that register model families; imported by name, like the rooms
SUBSTRATES = ("celine.llm", "celine.vision")

_discovered = False


def discover() -> None:
    """Import every room's light `__init__`, the built-in models and plugins, once."""
    global _discovered
    if _discovered:
        return
    for substrate in SUBSTRATES:
        importlib.import_module(substrate)
    rooms = importlib.import_module("celine.experiments")
    for info in sorted(pkgutil.iter_modules(rooms.__path__), key=lambda i: i.name):
        if info.ispkg:
            importlib.import_module(f"celine.experiments.{info.name}")
    for ep in entry_points(group="celine.plugins"):
        ep.load()
    # out-of-tree rooms without packaging: CELINE_PLUGINS=module[,module...] on the PYTHONPATH
    for module in filter(None, os.environ.get("CELINE_PLUGINS", "").split(",")):
        importlib.import_module(module.strip())
    _discovered = True


def task(name: str) -> TaskSpec:
    discover()
    if name not in TASKS:
        raise KeyError(name)
    return TASKS[name]
