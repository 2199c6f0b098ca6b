"""Runs against a real tracking server, and sweeps on a real (one-node) SLURM cluster."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from celine_testing import celine_cli
from mlflow.tracking import MlflowClient


def _runs(uri: str, experiment: str):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment} on {uri}"
    return client, client.search_runs([exp.experiment_id])


def _artifact_files(client: MlflowClient, run_id: str) -> set[str]:
    found, stack = set(), [None]
    while stack:
        for info in client.list_artifacts(run_id, stack.pop()):
            (stack.append(info.path) if info.is_dir else found.add(info.path))
    return found


def _assert_nothing_in_the_local_store(outputs: Path) -> None:
    assert not (outputs / "mlflow.db").exists()
    assert not (outputs / "mlartifacts").exists()


def _files_under(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()}


def test_artifacts_of_a_run_go_through_the_tracking_server(toy_conf, tmp_path, mlflow_server):
    outputs = tmp_path / "outputs"
    experiment = "celine/server-test"
    out = celine_cli(
        ["run", "task=toy", f"tracking.uri={mlflow_server.uri}",
         f"tracking.experiment={experiment}"],
        env={"CELINE_OUTPUTS": str(outputs)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    client, (run,) = _runs(mlflow_server.uri, experiment)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    arts = _artifact_files(client, run.info.run_id)
    assert {"results.json", "tables/params.csv", "config/resolved_config.yaml"} <= arts
    # stored by the server, under its --artifacts-destination
    assert {"results.json", "params.csv", "resolved_config.yaml"} <= _files_under(
        mlflow_server.artifacts
    )
    _assert_nothing_in_the_local_store(outputs)


def test_slurm_sweep_reports_to_the_server(toy_conf, tmp_path, mlflow_server, slurm_cluster):
    outputs = tmp_path / "outputs"
    experiment = "celine/slurm-test"
    out = celine_cli(
        ["run", "-m", "task=toy", "seed=0,1", "cluster=slurm",
         f"tracking.uri={mlflow_server.uri}", f"tracking.experiment={experiment}",
         # the test node has 2 CPUs and 8 GB; the preset asks for a real node's share
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.timeout_min=5"],
        env={"CELINE_OUTPUTS": str(outputs), "SLURM_CONF": str(slurm_cluster.conf)},
        timeout=240,
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    # submitit's warning on every sacct poll (accounting is off) is replaced by one explanation
    assert "Bypassing sacct error" not in text
    assert text.count("SLURM accounting is off here") == 1
    assert any(line.split()[:3] == ["job", "status", "mse"] for line in text.splitlines())
    client, runs = _runs(mlflow_server.uri, experiment)
    parents = [r for r in runs if r.data.tags.get("celine.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    # each job ran as a SLURM job (its id tagged), not in the submitting process
    slurm_ids = {c.data.tags.get("slurm.job_id") for c in children}
    assert None not in slurm_ids and len(slurm_ids) == 2
    for child in children:
        assert child.info.artifact_uri.startswith("mlflow-artifacts:")
        assert "results.json" in _artifact_files(client, child.info.run_id)
    assert "sweep_summary.csv" in _files_under(mlflow_server.artifacts)
    _assert_nothing_in_the_local_store(outputs)
    # the jobs end on their own (a job may still be exiting when its result file is written)
    env = {**os.environ, "SLURM_CONF": str(slurm_cluster.conf)}
    deadline, queue = time.monotonic() + 60, "?"
    while queue and time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=env).stdout
        time.sleep(1)
    assert queue.strip() == "", queue
