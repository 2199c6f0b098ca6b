import math

from celine_testing import client

from celine.tracking import flatten
from celine.tracking.callbacks import sweep_experiment
from celine.tracking.mlflow_store import MlflowTracker


def test_flatten_dots_nested_keys_and_jsons_lists():
    flat = flatten({"method": {"lr": 0.1, "sizes": [1, 2], "sub": {"a": None}}, "seed": 0})
    assert flat == {
        "method.lr": "0.1",
        "method.sizes": "[1, 2]",
        "method.sub.a": "None",
        "seed": "0",
    }


def test_tracker_round_trip_with_many_params_and_nan(outputs, tmp_path):
    uri = f"sqlite:///{outputs / 'mlflow.db'}"
    tracker = MlflowTracker(uri, str(outputs / "mlartifacts"))
    run_id = tracker.start("celine/unit", "r1", {"celine.task": "unit"})
    params = {f"p{i:03d}": str(i) for i in range(250)}  # more than one batch of 100
    params["long"] = "x" * 7000  # over MLflow's 6000-character cap: truncated, not an error
    tracker.log_params(params)
    tracker.log_metrics({"loss": 1.5, "diverged": math.nan}, step=4)
    f = tmp_path / "note.txt"
    f.write_text("hello")
    tracker.log_artifact(f, "notes")
    tracker.end("FINISHED")
    run = client(outputs).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(run.data.params) == 251 and len(run.data.params["long"]) == 6000
    assert run.data.metrics["loss"] == 1.5 and math.isnan(run.data.metrics["diverged"])
    assert [a.path for a in client(outputs).list_artifacts(run_id, "notes")] == ["notes/note.txt"]


def test_nested_run_points_at_its_parent(outputs):
    uri = f"sqlite:///{outputs / 'mlflow.db'}"
    parent = MlflowTracker(uri, str(outputs / "mlartifacts"))
    pid = parent.start("celine/unit", "sweep", {})
    child = MlflowTracker(uri, str(outputs / "mlartifacts"))
    cid = child.start("celine/unit", "job", {}, parent_run_id=pid)
    assert client(outputs).get_run(cid).data.tags["mlflow.parentRunId"] == pid


def test_sweep_experiment_names():
    from omegaconf import OmegaConf

    def cfg(overrides, task="toy"):
        return OmegaConf.create(
            {"hydra": {"overrides": {"task": overrides}}, "task": {"name": task}, "tracking": {}}
        )

    assert sweep_experiment(cfg(["task=toy", "seed=0,1"])) == "celine/toy"
    assert sweep_experiment(cfg(["task=a,b"])) == "celine/sweeps"
    assert sweep_experiment(cfg(["task=glob(*)"])) == "celine/sweeps"
