"""The med_amalgamation task: K segmentation tasks with domain shift, and their evaluation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .data import TaskData, load_tasks
from .evaluate import examples_figure, predict, segmentation_scores


def _one_thread_unless_asked(log) -> None:
    """`hardware.threads` unset on the CPU: one torch thread. Torch's default (every core) took
    a run from 2.5 min on one thread to over 7 min with two threads on a 2-core machine that
    other jobs kept busy (its threads wait for each other at every op). A fixed number, not
    one read from the load, because the thread count changes floating-point sums and so the
    Dice: the same command and seed must give the same result. `hardware.threads=N` uses N."""
    import torch

    torch.set_num_threads(1)
    log.info("hardware.threads unset: 1 torch thread (set hardware.threads to use more)")


class MedAmalgamationTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx
        self._tasks: list[TaskData] | None = None
        if ctx.hardware.device == "cpu" and not ctx.hardware.threads:
            _one_thread_unless_asked(ctx.log)

    @property
    def tasks(self) -> list[TaskData]:
        if self._tasks is None:
            self.ctx.log.info(
                "building %d %s tasks (%dD, %d px)", len(self.cfg.tasks), self.cfg.source,
                self.cfg.spatial_dims, self.cfg.image_size,
            )  # fmt: skip
            self._tasks = load_tasks(self.cfg)
        return self._tasks

    @property
    def roi(self) -> tuple[int, ...]:
        """The models' input size: larger test images are segmented window by window."""
        return (self.cfg.image_size,) * self.cfg.spatial_dims

    def expert_cache(self, expert_cfg) -> Path:
        return (
            Path(expert_cfg.cache_dir) if expert_cfg.cache_dir else self.ctx.outputs_dir / "models"
        )

    def evaluate(self, make_predictor, title: str):
        """`make_predictor(task) -> fn(x_batch, idx) -> mask` per task: metrics, the per-task
        table and the example figure."""
        device = self.ctx.hardware.device
        rows, examples = [], []
        for task in self.tasks:
            pred = predict(make_predictor(task), task.test_x, device, roi=self.roi)
            scores = segmentation_scores(pred, task.test_y)
            rows.append({"task": task.name, **scores})
            i = int(task.test_y.flatten(1).sum(1).argmax())  # an image with foreground
            examples.append(
                (task.name, task.test_x[i, 0].numpy(), task.test_y[i, 0].numpy(),
                 pred[i, 0].numpy())
            )  # fmt: skip
        table = pd.DataFrame(rows)
        metrics = {}
        for row in rows:
            metrics[f"dice/{row['task']}"] = row["dice"]
            metrics[f"hd95/{row['task']}"] = row["hd95"]
            if row["fp_empty"] == row["fp_empty"]:  # the task has empty-label test images
                metrics[f"fp_empty/{row['task']}"] = row["fp_empty"]
        metrics["dice/mean"] = float(table["dice"].mean())
        metrics["hd95/mean"] = float(table["hd95"].mean())
        if table["fp_empty"].notna().any():
            metrics["fp_empty/mean"] = float(table["fp_empty"].mean())
        return metrics, table, examples_figure(examples, title)
