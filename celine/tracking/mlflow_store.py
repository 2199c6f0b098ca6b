"""MLflow through an explicit client and run id (no fluent global state, so sequential sweep jobs
in one process never collide on an "active run")."""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.default_context import DefaultRunContext

_PARENT_TAG = "mlflow.parentRunId"
# The MLflow UI opens an experiment on its GenAI traces view unless this experiment tag says the
# experiment is classic model development (MLflow 3.x, `ExperimentKind` in its web app); with it,
# the UI opens on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///...` tracking URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    path = unquote(parsed.path)
    return None if path in ("", "/:memory:") else Path(path)


@contextmanager
def store_lock(uri: str):
    """Hold an exclusive file lock beside a SQLite store while MLflow creates or migrates it.

    MLflow builds a fresh store's schema (about 7 s of migrations) when the client is created;
    two processes doing it at once on the same file race and one crashes ("table ... already
    exists"). With the lock the second waits, then finds the schema ready."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_client(uri: str) -> MlflowClient:
    """An MlflowClient whose store exists and is migrated (created under `store_lock`)."""
    with store_lock(uri):
        return MlflowClient(tracking_uri=uri)


def experiment_id(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The experiment's id, creating it when absent. With `artifact_root` None the tracking
    server (or store) chooses where artifacts go: a `mlflow server --artifacts-destination`
    serves them as `mlflow-artifacts:`, so jobs on other machines never write locally."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if EXPERIMENT_KIND_TAG not in exp.tags:  # experiments made before the tag existed
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    location = None
    if artifact_root:
        location = f"{artifact_root.rstrip('/')}/{name.replace('/', '_')}"
        if "://" not in location:
            location = Path(location).resolve().as_uri()
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except Exception:  # another job of the same sweep created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class MlflowTracker:
    def __init__(self, uri: str, artifact_root: str | None) -> None:
        self.client = open_client(uri)
        self.uri, self.artifact_root = uri, artifact_root
        self.run_id: str | None = None

    def start(self, experiment: str, run_name: str, tags: dict[str, str], parent_run_id=None):
        exp_id = experiment_id(self.client, experiment, self.artifact_root)
        # the tags mlflow.start_run would set (mlflow.user, mlflow.source.name/type), then ours
        tags = {**DefaultRunContext().tags(), **tags}
        if parent_run_id:
            tags[_PARENT_TAG] = parent_run_id
        run = self.client.create_run(exp_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        return self.run_id

    def log_params(self, params: dict[str, str]) -> None:
        # MLflow caps a param value at 6000 characters; the full config is an artifact anyway.
        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)


def runs_frame(uri: str, experiment: str):
    """All runs of one experiment as a pandas DataFrame with the columns of `mlflow.search_runs`
    (run_id, status, start_time, ..., params.*, metrics.*, tags.*), read through an explicit
    client: the fluent `mlflow.search_runs` needs the process-wide `set_tracking_uri`."""
    import pandas as pd
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    rows, token = [], None
    while True:
        page = client.search_runs(
            [exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
            order_by=["attributes.start_time DESC"], page_token=token,
        )  # fmt: skip
        for run in page:
            info, data = run.info, run.data
            rows.append({
                "run_id": info.run_id, "experiment_id": info.experiment_id,
                "status": info.status, "artifact_uri": info.artifact_uri,
                "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
                "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True)
                if info.end_time else pd.NaT,
                **{f"metrics.{k}": v for k, v in data.metrics.items()},
                **{f"params.{k}": v for k, v in data.params.items()},
                **{f"tags.{k}": v for k, v in data.tags.items()},
            })  # fmt: skip
        token = page.token
        if not token:
            return pd.DataFrame(rows)
