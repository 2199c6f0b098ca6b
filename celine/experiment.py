"""One run: validate, seed, resolve the device, open the tracker run, call the method, check the
declared metrics, record, close. A run that raises is closed FAILED with its traceback, its log and
whatever partial results it had."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from celine import gitinfo, hardware, paths, registry, summary, validation
from celine.api import Result, RunContext
from celine.errors import Interrupted, RunError
from celine.tracking import flatten, open_tracker, tracking_target
from celine.tracking.callbacks import PARENT_RUN_FILE

log = logging.getLogger(__name__)

MISSING_TAG = "celine.missing."  # + metric name: the reason a declared metric has no value


@dataclass
class JobInfo:
    """What Hydra knows about this job; tests build one by hand."""

    output_dir: Path
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    sweep_dir: Path | None = None
    job_num: int | None = None


class _StepTracker:
    """Forwards to the real tracker and remembers the last step, so summary metrics land at the
    end of the curves rather than at step 0."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.last_step = inner, 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step is not None:
            self.last_step = max(self.last_step, step)
        self.inner.log_metrics(metrics, step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.inner.log_artifact(path, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.inner.log_text(text, artifact_file)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.inner.set_tags(tags)


class Experiment:
    def __init__(self, cfg: DictConfig, job: JobInfo) -> None:
        self.cfg, self.job = cfg, job
        self.plan = validation.plan(cfg)  # ConfigError before anything else happens

    @property
    def run_name(self) -> str:
        p = self.plan
        name = self.cfg.get("run_name") or f"{p.method.name}.{p.model.name}.{p.hardware.name}"
        return name if self.job.job_num is None else f"{name}#{self.job.job_num}"

    def run(self) -> dict[str, float]:
        p, job = self.plan, self.job
        hw = hardware.resolve(p.hardware)  # device errors are config errors: no run opened yet
        hardware.configure(hw, p.hardware, p.seed)
        outputs = Path(self.cfg.paths.outputs)
        job.output_dir.mkdir(parents=True, exist_ok=True)

        uri, artifact_root = tracking_target(p.tracking.uri, p.tracking.artifact_root, outputs)
        tracker = open_tracker(p.tracking.backend, uri, artifact_root)
        self._uri = None if p.tracking.backend == "none" else uri
        self._default_uri = paths.default_tracking_uri(outputs)
        run_id = tracker.start(
            p.tracking.experiment or f"celine/{p.task.name}",
            self.run_name,
            self._tags(),
            parent_run_id=self._parent_run_id(),
        )
        log.info("run %s (%s) -> %s", self.run_name, run_id or "untracked", job.output_dir)
        steps = _StepTracker(tracker)
        ctx = run_context(p, hw, job.output_dir, outputs, steps)
        started = time.time()
        try:
            with _sigterm_as_interrupt():
                self._log_config(tracker)
                ctx.task = registry.resolve(p.task.impl)(p.task_cfg, ctx)
                result = registry.resolve(p.method.impl)(p.method_cfg).run(ctx)
                self._check(result)
                self._record(ctx, result, steps.last_step)
        except BaseException as err:
            status = "KILLED" if isinstance(err, KeyboardInterrupt | Interrupted) else "FAILED"
            doc = self._write_results(ctx, status, ctx.partial, started, run_id, error=err)
            self._summarize(doc)  # before _finish, so the logged celine.log holds it too
            self._finish(tracker, status)
            raise
        doc = self._write_results(
            ctx,
            "FINISHED",
            result.metrics,
            started,
            run_id,
            notes=result.notes,
            missing=result.missing,
        )
        self._summarize(doc)
        self._finish(tracker, "FINISHED")
        return result.metrics

    # -- pieces of run() ---------------------------------------------------------------------

    def _tags(self) -> dict[str, str]:
        p, job = self.plan, self.job
        tags = {
            "celine.task": p.task.name,
            "celine.method": p.method.name,
            "celine.model": p.model.name,
            "celine.hardware": p.hardware.name,
            "celine.seed": str(p.seed),
            "celine.overrides": " ".join(job.overrides),
            "celine.output_dir": str(job.output_dir),
            **gitinfo.describe(paths.checkout_root()),
        }
        if job.sweep_dir is not None:
            tags["celine.sweep_dir"] = str(job.sweep_dir)
            tags["celine.job_num"] = str(job.job_num)
        if slurm := os.environ.get("SLURM_JOB_ID"):
            tags["slurm.job_id"] = slurm
        return tags

    def _parent_run_id(self) -> str | None:
        if self.job.sweep_dir is None:
            return None
        marker = self.job.sweep_dir / PARENT_RUN_FILE
        if not marker.is_file():
            return None
        return json.loads(marker.read_text()).get("run_id")

    def _log_config(self, tracker: Any) -> None:
        resolved = OmegaConf.to_container(self.cfg, resolve=True)
        resolved.pop("hydra", None)
        tracker.log_params(flatten(resolved))
        config_file = self.job.output_dir / "resolved_config.yaml"
        OmegaConf.save(OmegaConf.create(resolved), config_file)
        tracker.log_artifact(config_file, "config")
        hydra_dir = self.job.output_dir / ".hydra"
        for name in ("overrides.yaml", "config.yaml", "hydra.yaml"):
            tracker.log_artifact(hydra_dir / name, "config/hydra")

    def _check(self, result: Result) -> None:
        declared = {m.name for m in self.plan.task.metrics}
        undeclared = sorted(set(result.missing) - declared)
        if undeclared:
            raise RunError(
                f"method '{self.plan.method.name}' reports as missing metrics task "
                f"'{self.plan.task.name}' does not declare: {', '.join(undeclared)} "
                f"(declared: {', '.join(sorted(declared))})"
            )
        both = sorted(set(result.missing) & set(result.metrics))
        if both:
            raise RunError(
                f"method '{self.plan.method.name}' reports {', '.join(both)} both as a value "
                "and as missing; report one"
            )
        missing = [
            m.name
            for m in self.plan.task.metrics
            if m.required and m.name not in result.metrics and m.name not in result.missing
        ]
        if missing:
            raise RunError(
                f"method '{self.plan.method.name}' did not report the metrics task "
                f"'{self.plan.task.name}' declares: {', '.join(missing)}"
            )
        bad = result.non_finite()
        if bad:
            values = ", ".join(f"{k}={result.metrics[k]}" for k in bad)
            raise RunError(f"non-finite metrics: {values}")

    def _record(self, ctx: RunContext, result: Result, last_step: int) -> None:
        if result.missing:
            for name, reason in result.missing.items():
                ctx.log.warning("metric %s is missing: %s", name, reason)
            ctx.tracker.set_tags(
                {f"{MISSING_TAG}{name}": reason[:5000] for name, reason in result.missing.items()}
            )
        for name, points in result.series.items():
            for step, value in points:
                ctx.tracker.log_metrics({name: value}, step=step)
        ctx.log_metrics(result.metrics, step=last_step)
        for name, table in result.tables.items():
            ctx.log_table(name, table)
        for name, fig in result.figures.items():
            ctx.log_figure(name, fig)
        for path in result.artifacts:
            ctx.log_artifact(path)

    def _write_results(
        self,
        ctx: RunContext,
        status: str,
        metrics: dict[str, float],
        started: float,
        run_id: str | None,
        error: BaseException | None = None,
        notes: dict[str, str] | None = None,
        missing: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        p = self.plan
        doc: dict[str, Any] = {
            "status": status,
            "task": p.task.name,
            "method": p.method.name,
            "model": p.model.name,
            "hardware": p.hardware.name,
            "device": ctx.hardware.device,
            "seed": p.seed,
            "run_id": run_id,
            "duration_s": round(time.time() - started, 3),
            "metrics": {k: _json_number(v) for k, v in metrics.items()},
            "tables": sorted(ctx.tables),
            "notes": notes or {},
            "missing": missing or {},
        }
        if error is not None:
            doc["error"] = f"{type(error).__name__}: {error}"
            trace = "".join(traceback.format_exception(error))
            (self.job.output_dir / "traceback.txt").write_text(trace)
            ctx.tracker.log_artifact(self.job.output_dir / "traceback.txt")
        path = self.job.output_dir / "results.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        ctx.tracker.log_artifact(path)
        return doc

    def _summarize(self, doc: dict[str, Any]) -> None:
        """The run's outcome where the user is looking (console and celine.log)."""
        metrics = self.plan.task.metrics
        primary = metrics[0].name if metrics else None
        text = summary.run_summary(
            doc, primary, str(self.job.output_dir), self._uri, self._default_uri
        )
        log.log(logging.INFO if doc["status"] == "FINISHED" else logging.ERROR, "%s", text)

    def _finish(self, tracker: Any, status: str) -> None:
        for handler in logging.getLogger().handlers:
            handler.flush()
        try:
            tracker.log_artifact(self.job.output_dir / "celine.log", "logs")
        finally:
            tracker.end(status)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler's stop, `kill`) ends the run like Ctrl-C: recorded KILLED, with its
    results so far, instead of leaving a run that looks alive forever."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _json_number(value: float) -> float | str:
    value = float(value)
    return value if math.isfinite(value) else str(value)


def run_context(plan: validation.Plan, hw: Any, run_dir: Path, outputs: Path, tracker: Any):
    """The `RunContext` a method sees, for a validated plan (its task is built by the caller)."""
    return RunContext(
        task=None,
        task_cfg=plan.task_cfg,
        model_cfg=plan.model_cfg,
        hardware=hw,
        seed=plan.seed,
        run_dir=run_dir,
        outputs_dir=outputs,
        log=logging.getLogger(f"celine.{plan.method.name}"),
        tracker=tracker,
        model_name=plan.model.name,
        _model_builder=lambda cfg, ctx: registry.resolve(plan.model.impl)(cfg, ctx),
    )
