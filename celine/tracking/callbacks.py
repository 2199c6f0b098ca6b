"""Hydra callback that gives every multirun one parent MLflow run with each job as a child.

`on_multirun_start` and `on_multirun_end` run on the submitting host (with submitit, jobs run on
cluster nodes), so the parent run is created here and its id handed to the jobs through a file in
the sweep folder, which every launcher shares.
"""

from __future__ import annotations

import atexit
import json
import logging
import signal
import threading
import weakref
from pathlib import Path
from typing import Any, ClassVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from celine.cluster import quiet_sacct_warnings
from celine.summary import sweep_table
from celine.tracking.base import tracking_target

log = logging.getLogger(__name__)

PARENT_RUN_FILE = ".celine_parent_run.json"


def sweep_experiment(config: DictConfig) -> str:
    tracking = config.get("tracking") or {}
    if tracking.get("experiment"):
        return tracking.experiment
    swept = [o for o in config.hydra.overrides.task if o.split("=", 1)[0].lstrip("+~") == "task"]
    if any("," in o or "(" in o for o in swept):
        return "celine/sweeps"  # one sweep over several tasks
    try:
        return f"celine/{config.task.name}"
    except Exception:
        return "celine/sweeps"


def _tracking_target(config: DictConfig) -> tuple[str, str | None] | None:
    tracking = config.get("tracking") or {}
    if tracking.get("backend", "mlflow") != "mlflow":
        return None
    outputs = Path(config.paths.outputs)
    return tracking_target(tracking.get("uri"), tracking.get("artifact_root"), outputs)


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.tracker = None
        self._previous_sigterm: Any = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_sacct_warnings()
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        target = _tracking_target(config)
        if target is None:
            return
        from celine.tracking.mlflow_store import MlflowTracker

        self.tracker = MlflowTracker(*target)
        run_id = self.tracker.start(
            sweep_experiment(config),
            f"sweep {sweep_dir.name}",
            {
                "celine.sweep_dir": str(sweep_dir),
                "celine.overrides": " ".join(config.hydra.overrides.task),
                "celine.role": "sweep",
            },
        )
        (sweep_dir / PARENT_RUN_FILE).write_text(json.dumps({"run_id": run_id}) + "\n")
        log.info("sweep parent run %s", run_id)
        self._watch_interrupts()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._unwatch_interrupts()
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = sweep_rows(sweep_dir, _primary_metric(config))
        failed = [r["job"] for r in rows if r["status"] != "FINISHED"]
        if failed:
            log.error("%d of %d jobs failed: %s", len(failed), len(rows), ", ".join(failed))
        parent = f"; MLflow parent run {self.tracker.run_id}" if self.tracker else ""
        log.info(
            "sweep of %d jobs: %d FINISHED, %d not (folder %s%s)\n%s",
            len(rows), len(rows) - len(failed), len(failed), sweep_dir, parent, sweep_table(rows),
        )  # fmt: skip
        if self.tracker is None:
            return
        import pandas as pd

        summary = sweep_dir / "sweep_summary.csv"
        pd.DataFrame(rows).to_csv(summary, index=False)
        self.tracker.log_artifact(summary)
        for name in ("multirun.yaml", "optimization_results.yaml"):
            self.tracker.log_artifact(sweep_dir / name)
        self.tracker.end("FAILED" if failed else "FINISHED")
        self.tracker = None

    # -- a sweep stopped by Ctrl-C or SIGTERM ----------------------------------------------------
    # Hydra calls no hook when a sweep is interrupted, so `celine run` closes the open parent runs
    # itself (`abort_open_sweeps`) when a KeyboardInterrupt or a crash leaves Hydra; a signal
    # handler must not write to the store (the main thread may be inside a write). SIGTERM is
    # turned into KeyboardInterrupt like Ctrl-C, and a parent still open at interpreter exit (a
    # caller that skipped `abort_open_sweeps`) is closed FAILED rather than left RUNNING.

    _open: ClassVar[weakref.WeakSet] = weakref.WeakSet()

    @classmethod
    def abort_open_sweeps(cls, status: str) -> None:
        for callback in list(cls._open):
            callback._close_abandoned(status)

    def _watch_interrupts(self) -> None:
        SweepCallback._open.add(self)
        atexit.register(self._close_abandoned)
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_keyboard_interrupt)

    def _unwatch_interrupts(self) -> None:
        SweepCallback._open.discard(self)
        atexit.unregister(self._close_abandoned)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def _close_abandoned(self, status: str = "FAILED") -> None:
        self._unwatch_interrupts()
        if self.tracker is None:
            return
        try:
            self.tracker.end(status)
            log.warning(
                "sweep stopped before its end: parent run %s %s", self.tracker.run_id, status
            )
        except Exception:  # the store may be gone at exit; nothing more can be done here
            log.exception("could not close the sweep's parent run")
        self.tracker = None


def _sigterm_as_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def sweep_rows(sweep_dir: Path, primary: str | None = None) -> list[dict[str, Any]]:
    """One row per job folder with a results.json: job, status, metrics (primary first), overrides."""
    rows = []
    for path in sorted(sweep_dir.glob("*/results.json"), key=lambda p: _job_num(p.parent)):
        doc = json.loads(path.read_text())
        metrics = dict(doc.get("metrics", {}))
        ordered = {primary: metrics.pop(primary)} if primary in metrics else {}
        rows.append(
            {
                "job": path.parent.name,
                "status": doc.get("status"),
                **ordered,
                **metrics,
                "overrides": _job_overrides(path.parent),
            }  # fmt: skip
        )
    return rows


def _job_overrides(job_dir: Path) -> str:
    import yaml

    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        return " ".join(yaml.safe_load(path.read_text()) or [])
    except (OSError, yaml.YAMLError):
        return ""


def _primary_metric(config: DictConfig) -> str | None:
    try:
        from celine import registry

        registry.discover()
        return registry.TASKS[config.task.name].metrics[0].name
    except Exception:  # a sweep over several tasks, or an unknown one: no single primary metric
        return None


def _job_num(folder: Path) -> int:
    return int(folder.name) if folder.name.isdigit() else 1 << 30
