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


SERVER_SCHEMES = ("http", "https", "databricks")


def is_server(uri: str) -> bool:
    return uri.split(":", 1)[0].lower() in SERVER_SCHEMES


def tracking_target(
    uri: str | None, artifact_root: str | None, outputs: Path
) -> tuple[str, str | None]:
    """(tracking URI, artifact root) of a run. The local default is a SQLite store with artifacts
    beside it under outputs/; with a tracking server the server stores artifacts
    (`--artifacts-destination`), so the root stays None unless the user set one."""
    from celine import paths

    uri = uri or paths.default_tracking_uri(outputs)
    if artifact_root is None and not is_server(uri):
        artifact_root = str(outputs / "mlartifacts")
    return uri, artifact_root


def open_tracker(backend: str, uri: str, artifact_root: str | None):
    if backend == "none":
        return NullTracker()
    from celine.tracking.mlflow_store import MlflowTracker

    return MlflowTracker(uri, artifact_root)
