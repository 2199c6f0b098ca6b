"""The public surface that rooms (`celine.experiments.*`) build on.

A room registers its task and methods in its package `__init__` with plain strings, so that
`celine ls` and `celine validate` can list and check everything without importing torch:

    from celine.api import MetricSpec, register_method, register_task

    register_task(
        "lm_pretrain",
        impl="celine.experiments.lm_pretrain.task:LMPretrainTask",
        config="celine.experiments.lm_pretrain.config:LMPretrainTaskConfig",
        metrics=[MetricSpec("test/perplexity", goal="min")],
        methods=["pretrain", "unigram"],
    )
    register_method("pretrain", impl="...method:Pretrain", config="...config:PretrainConfig")

A method is a class constructed with its validated config whose `run(ctx)` returns a `Result`.
Baselines are methods too, so a comparison is two runs that differ in one override.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from celine.errors import ConfigError, RunError
from celine.registry import (
    MetricSpec,
    register_method,
    register_model,
    register_task,
)
from celine.schema import existing_path, in_range, one_of

if TYPE_CHECKING:  # heavy imports stay out of `celine ls`
    import logging

    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "ConfigError",
    "Hardware",
    "Method",
    "MetricSpec",
    "Result",
    "RunContext",
    "RunError",
    "existing_path",
    "in_range",
    "one_of",
    "register_method",
    "register_model",
    "register_task",
]


@dataclass
class Result:
    """What a method returns: summary metrics, optional per-step series, tables and figures."""

    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    # a declared comparison metric whose precondition failed (the baseline at chance, a curve
    # that never crosses its threshold): {metric: reason}. The runner accepts it in place of the
    # number, records it (tag `celine.missing.<metric>`, results.json) and `celine compare` shows
    # it as missing, so a comparison can never pass vacuously on a made-up value.
    missing: dict[str, str] = field(default_factory=dict)

    def non_finite(self) -> list[str]:
        return [k for k, v in self.metrics.items() if not math.isfinite(float(v))]


@dataclass(frozen=True)
class Hardware:
    """The hardware group after resolution: what `auto` became on this machine."""

    name: str
    device: str  # "cpu" or "cuda" / "cuda:N"
    dtype: str  # "float32", "bfloat16" or "float16"
    threads: int | None
    deterministic: bool

    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)


class Tracker(Protocol):
    """What a method may log through; `RunContext` forwards to the run's tracker."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...


@dataclass
class RunContext:
    """Everything a method needs from the runner. Tests may build one by hand."""

    task: Any
    task_cfg: Any
    model_cfg: Any
    hardware: Hardware
    seed: int
    run_dir: Path
    outputs_dir: Path
    log: logging.Logger
    tracker: Tracker
    model_name: str = ""
    _model_builder: Any = None
    partial: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def build_model(self) -> Any:
        """Build (or load, or train-then-load) the model the `model` group selected."""
        if self._model_builder is None:
            raise RunError(f"no model builder is registered for model '{self.model_name}'")
        return self._model_builder(self.model_cfg, self)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items()}
        self.partial.update(clean)
        self.tracker.log_metrics(clean, step=step)

    def log_table(self, name: str, df: pd.DataFrame) -> Path:
        """Save a table as CSV in the run folder and the tracker; kept even if the run fails."""
        self.tables[name] = df
        path = self.run_dir / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        self.tracker.log_artifact(path, "tables")
        return path

    def log_figure(self, name: str, fig: Figure) -> Path:
        path = self.run_dir / "plots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        self.tracker.log_artifact(path, "plots")
        import matplotlib.pyplot as plt

        plt.close(fig)  # sweeps run many jobs in one process: do not keep every figure alive
        return path

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.tracker.log_artifact(Path(path), artifact_path)


class Method(Protocol):
    """A method is constructed with its validated config and run once."""

    def __init__(self, cfg: Any) -> None: ...
    def run(self, ctx: RunContext) -> Result: ...
