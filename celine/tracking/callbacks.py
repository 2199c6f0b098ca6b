"""Hydra callback that gives every multirun one parent MLflow run with each job as a child.

`on_multirun_start` and `on_multirun_end` run on the submitting host (with submitit, jobs run on
cluster nodes), so the parent run is created here and its id handed to the jobs through a file in
the sweep folder, which every launcher shares.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from celine import paths

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


def _tracking_target(config: DictConfig) -> tuple[str, str] | None:
    tracking = config.get("tracking") or {}
    if tracking.get("backend", "mlflow") != "mlflow":
        return None
    outputs = Path(config.paths.outputs)
    uri = tracking.get("uri") or paths.default_tracking_uri(outputs)
    root = tracking.get("artifact_root") or str(outputs / "mlartifacts")
    return uri, root


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.tracker = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
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

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = []
        for path in sorted(sweep_dir.glob("*/results.json"), key=lambda p: _job_num(p.parent)):
            doc = json.loads(path.read_text())
            rows.append(
                {"job": path.parent.name, "status": doc.get("status"), **doc.get("metrics", {})}
            )
        failed = [r["job"] for r in rows if r["status"] != "FINISHED"]
        if failed:
            log.error("%d of %d jobs failed: %s", len(failed), len(rows), ", ".join(failed))
        if self.tracker is None:
            return
        import pandas as pd

        summary = sweep_dir / "sweep_summary.csv"
        pd.DataFrame(rows).to_csv(summary, index=False)
        self.tracker.log_artifact(summary)
        for name in ("multirun.yaml", "optimization_results.yaml"):
            self.tracker.log_artifact(sweep_dir / name)
        self.tracker.end("FAILED" if failed else "FINISHED")


def _job_num(folder: Path) -> int:
    return int(folder.name) if folder.name.isdigit() else 1 << 30
