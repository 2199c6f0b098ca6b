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

From Python (a notebook, a test, another experiment), `run` and `multirun` compose, validate,
track and run exactly as `celine run` and `celine run -m` do (they are what the command calls):

    from celine import api

    result = api.run(["task=lm_pretrain", "model.size=smoke"])
    result.status, result.metrics["test/perplexity"], result.run_dir, result.run_id
    results = api.multirun(["task=dynasor", "method=certaindex,fixed_budget", "seed=0,1"])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from celine.checkpoints import load_checkpoint
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
    "RunResult",
    "context",
    "existing_path",
    "in_range",
    "load_checkpoint",
    "multirun",
    "one_of",
    "register_method",
    "register_model",
    "register_task",
    "run",
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


# -- running from Python ---------------------------------------------------------------------


@dataclass
class RunResult:
    """One finished (or failed, or killed) run, read back from the results.json it wrote.

    `status` is MLflow's: FINISHED, FAILED or KILLED. `exception` is the exception the run raised
    when it ran in this process (None for a launcher's remote job: read `error` instead).
    """

    status: str
    metrics: dict[str, float]
    run_id: str | None
    run_dir: Path
    error: str | None = None
    task: str | None = None
    method: str | None = None
    model: str | None = None
    seed: int | None = None
    notes: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # declared metrics reported missing
    tables: list[str] = field(default_factory=list)
    duration_s: float | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the run used (every default included)."""
        import yaml

        return yaml.safe_load((self.run_dir / "resolved_config.yaml").read_text())

    def table(self, name: str) -> pd.DataFrame:
        """A table the run logged (`ctx.log_table` or `Result.tables`), from its CSV."""
        import pandas as pd

        return pd.read_csv(self.run_dir / "tables" / f"{name}.csv")

    @classmethod
    def from_dir(cls, run_dir: Path, exception: BaseException | None = None) -> RunResult:
        import json

        path = Path(run_dir) / "results.json"
        if not path.is_file():
            error = f"the job wrote no {path}" if exception is None else _describe(exception)
            return cls("FAILED", {}, None, Path(run_dir), error=error, exception=exception)
        doc = json.loads(path.read_text())
        return cls(
            status=doc.get("status", "FAILED"),
            metrics={k: float(v) for k, v in doc.get("metrics", {}).items()},
            run_id=doc.get("run_id"),
            run_dir=Path(run_dir),
            error=doc.get("error"),
            task=doc.get("task"),
            method=doc.get("method"),
            model=doc.get("model"),
            seed=doc.get("seed"),
            notes=doc.get("notes", {}),
            missing=doc.get("missing", {}),
            tables=doc.get("tables", []),
            duration_s=doc.get("duration_s"),
            exception=exception,
        )


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def run(
    overrides: list[str] | None = None,
    *,
    config_dir: str | Path | None = None,
    run_dir: str | Path | None = None,
    check: bool = False,
) -> RunResult:
    """Compose, validate, track and run one experiment, exactly as `celine run` does.

    overrides: Hydra overrides, as typed after `celine run` (["task=dynasor", "method.cap=3"]).
    config_dir: another config folder (default: the checkout's conf/, or $CELINE_CONFIG_DIR).
    run_dir: the run folder (default: Hydra's, outputs/runs/<task>/<time>).
    check: re-raise the run's exception when it did not finish (like `subprocess.run(check=)`).

    A bad config raises `ConfigError` before any run is opened (Hydra's own composition errors,
    such as an unknown preset, raise Hydra's exception). A run that fails is recorded FAILED and
    returned with its partial metrics and `error`; Ctrl-C records it KILLED and re-raises.
    """
    from celine import app

    overrides = list(overrides or [])
    if run_dir is not None:
        overrides = [*_drop(overrides, "hydra.run.dir"), f"hydra.run.dir={_quoted(run_dir)}"]
    result = app.launch_run(overrides, config_dir=config_dir)
    if check and not result.ok:
        raise result.exception or RunError(result.error or f"run {result.status}")
    return result


def multirun(
    overrides: list[str] | None = None,
    *,
    config_dir: str | Path | None = None,
    sweep_dir: str | Path | None = None,
) -> list[RunResult]:
    """A sweep, exactly as `celine run -m` runs it: Hydra's configured sweeper and launcher
    (basic, joblib, submitit/SLURM, Optuna ...), one MLflow parent run with a child per job, a
    failed job recorded FAILED without stopping the others. Returns one result per job, in job
    order; the caller decides what a failed job means (`celine run -m` exits 1)."""
    from celine import app

    overrides = list(overrides or [])
    if sweep_dir is not None:
        overrides = [*_drop(overrides, "hydra.sweep.dir"), f"hydra.sweep.dir={_quoted(sweep_dir)}"]
    return app.launch_multirun(overrides, config_dir=config_dir)


def context(
    overrides: list[str] | None = None,
    *,
    config_dir: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> RunContext:
    """The run context `celine run` would give a method, with its task built, but no run: the
    config composed and validated as for a run, the hardware resolved and seeded, nothing tracked.
    For exploration scripts and tests that call a task's or a method's pieces directly; what is
    reported goes through `run` / `multirun`.

    run_dir: where `log_table`/`log_figure` write (default: outputs/contexts/<task>/<time>).
    """
    import time

    from celine import configs, hardware, registry, validation
    from celine.experiment import run_context
    from celine.tracking import NullTracker

    with configs.hydra_context(Path(config_dir) if config_dir else None):
        cfg = configs.compose(list(overrides or []))
    p = validation.plan(cfg)
    hw = hardware.resolve(p.hardware)
    hardware.configure(hw, p.hardware, p.seed)
    outputs = Path(cfg.paths.outputs)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = Path(run_dir) if run_dir else outputs / "contexts" / p.task.name / stamp
    ctx = run_context(p, hw, run_dir, outputs, NullTracker())
    ctx.task = registry.resolve(p.task.impl)(p.task_cfg, ctx)
    return ctx


def _quoted(path: str | Path) -> str:
    """A path as a Hydra override value (quoted: spaces, commas and '=' are grammar there)."""
    text = str(Path(path).resolve()).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _drop(overrides: list[str], key: str) -> list[str]:
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+") != key]
