"""The sanity baseline every table needs: one intensity threshold per task, fitted on the
training split. A benchmark it solves measures nothing about amalgamation (issue 27)."""

from __future__ import annotations

import torch

from .data import TaskData


def fit_threshold(x: torch.Tensor, y: torch.Tensor, candidates: int = 256) -> tuple[float, bool]:
    """The threshold t and side (foreground above t, or below it) with the best Dice of all
    training pixels pooled, over `candidates` evenly spaced intensity levels."""
    values, labels = x.flatten(), y.flatten() > 0.5
    thresholds = torch.linspace(float(values.min()), float(values.max()), candidates + 2)[1:-1]
    best, choice = -1.0, (0.5, True)
    for t in thresholds.tolist():
        for above in (True, False):
            pred = values > t if above else values < t
            dice = 2 * (pred & labels).sum() / (pred.sum() + labels.sum()).clamp_min(1)
            if float(dice) > best:
                best, choice = float(dice), (t, above)
    return choice


def threshold_predictor(task: TaskData, candidates: int = 256):
    """`fn(x_batch, idx) -> mask` for the task's fitted threshold (the evaluate() protocol)."""
    t, above = fit_threshold(task.train_x, task.train_y, candidates)

    def fn(x, idx, window=None):
        return (x > t) if above else (x < t)

    return fn
