"""The cka room's tests that call a task's or a method's pieces directly get their run context
from `celine.api.context`: the context `celine run task=cka` builds (validated config, resolved
and seeded hardware), with tiny teachers and nothing tracked."""

from __future__ import annotations

import json
from pathlib import Path

TINY_TASK = dict(teacher_epochs=3, teacher_width=0.5, plot_points=50)


def make_ctx(outputs: Path, seed: int = 0, task: dict | None = None, width: float = 0.5):
    from celine import api

    overrides = [
        "task=cka",
        f"seed={seed}",
        f"model.width={width}",
        f"paths.outputs='{Path(outputs)}'",
        *(f"task.{k}={json.dumps(v)}" for k, v in {**TINY_TASK, **(task or {})}.items()),
    ]
    return api.context(overrides, run_dir=Path(outputs) / "run")
