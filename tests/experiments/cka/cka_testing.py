"""A RunContext built by hand for the cka room's tests: tiny teachers, no MLflow."""

from __future__ import annotations

import logging
from pathlib import Path

TINY_TASK = dict(teacher_epochs=3, teacher_width=0.5, plot_points=50)


class NullTracker:
    def log_metrics(self, metrics, step=None):
        pass

    def log_artifact(self, path, artifact_path=None):
        pass

    def log_text(self, text, artifact_file):
        pass


def make_ctx(outputs: Path, seed: int = 0, task: dict | None = None, width: float = 0.5):
    from celine.api import Hardware, RunContext
    from celine.experiments.cka.config import CKATaskConfig
    from celine.experiments.cka.task import CKATask
    from celine.vision.models import SmallCNNConfig

    tcfg = CKATaskConfig(**{**TINY_TASK, **(task or {})})
    ctx = RunContext(
        task=None,
        task_cfg=tcfg,
        model_cfg=SmallCNNConfig(width=width),
        hardware=Hardware("cpu", "cpu", "float32", None, True),
        seed=seed,
        run_dir=outputs / "run",
        outputs_dir=outputs,
        log=logging.getLogger("cka-test"),
        tracker=NullTracker(),
    )
    ctx.task = CKATask(tcfg, ctx)
    return ctx
