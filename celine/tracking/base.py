"""The tracker interface the Experiment uses, and the no-op tracker behind `tracking=none`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Flatten a nested dict into dotted keys; lists become JSON so the MLflow compare view works."""
    out: dict[str, str] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix[:-1]
    out[key] = json.dumps(tree) if isinstance(tree, list | tuple) else str(tree)
    return out


class NullTracker:
    """Tracks nothing; the run folder still gets results.json, tables and plots."""

    run_id: str | None = None

    def start(self, experiment: str, run_name: str, tags: dict[str, str], parent_run_id=None):
        return None

    def log_params(self, params: dict[str, str]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def log_text(self, text: str, artifact_file: str) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def end(self, status: str) -> None:
        pass


def open_tracker(backend: str, uri: str, artifact_root: str):
    if backend == "none":
        return NullTracker()
    from celine.tracking.mlflow_store import MlflowTracker

    return MlflowTracker(uri, artifact_root)
