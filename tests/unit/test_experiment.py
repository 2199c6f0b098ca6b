"""The Experiment records a run completely, and a failing run keeps what it produced."""

import json

import pytest
from celine_testing import artifact_paths, client, run_in_process, runs_of

from celine.errors import RunError
from celine.paths import checkout_root


def _head_commit() -> str:
    import subprocess

    root = checkout_root()
    if root is None:
        return "unknown"
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def test_finished_run_has_tags_params_metrics_and_artifacts(toy_conf, outputs, tmp_path):
    metrics = run_in_process(["task=toy", "seed=3"], tmp_path / "run", toy_conf)
    (run,) = runs_of(outputs, "toy")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["mse"] == pytest.approx(metrics["mse"])
    assert metrics["mse"] < 0.05  # the fit recovered the line (noise 0.1 -> mse ~0.01)
    tags = run.data.tags
    assert tags["celine.task"] == "toy" and tags["celine.method"] == "toy_fit"
    assert tags["celine.model"] == "toy_linear" and tags["celine.hardware"] == "cpu"
    assert tags["celine.git_dirty"] in ("true", "false", "unknown")
    # MLflow's own tag names, which its UI shows (Version, Source, User)
    assert tags["mlflow.source.git.commit"] == _head_commit()
    assert "celine.git_commit" not in tags
    assert tags["mlflow.source.name"] and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"]
    exp = client(outputs).get_experiment(run.info.experiment_id)
    # without this tag MLflow 3's UI opens the experiment on its GenAI traces view
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.params["method.steps"] == "20" and run.data.params["seed"] == "3"
    history = client(outputs).get_metric_history(run.info.run_id, "train/mse")
    assert [m.step for m in history] == list(range(1, 21))
    # the summary lands at the end of the curves, not at step 0
    assert client(outputs).get_metric_history(run.info.run_id, "mse")[0].step == 20
    arts = artifact_paths(outputs, run.info.run_id)
    assert {"results.json", "tables/params.csv", "config/resolved_config.yaml"} <= arts
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "FINISHED" and results["run_id"] == run.info.run_id


def test_raising_run_is_failed_with_traceback_and_partial_results(toy_conf, outputs, tmp_path):
    with pytest.raises(RuntimeError, match="toy failure at step 3"):
        run_in_process(["task=toy", "method=toy_fail"], tmp_path / "run", toy_conf)
    (run,) = runs_of(outputs, "toy")
    assert run.info.status == "FAILED"
    history = client(outputs).get_metric_history(run.info.run_id, "train/mse")
    assert [m.step for m in history] == [1, 2, 3]  # partial curve kept
    arts = artifact_paths(outputs, run.info.run_id)
    assert {"traceback.txt", "results.json", "tables/partial.csv"} <= arts
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "FAILED"
    assert "toy failure at step 3" in results["error"]
    assert results["metrics"]["train/mse"] == pytest.approx(1 / 3)
    assert "toy failure" in (tmp_path / "run" / "traceback.txt").read_text()


@pytest.mark.parametrize(("mode", "message"), [("nan", "non-finite"), ("missing", "mse")])
def test_bad_results_fail_the_run(toy_conf, outputs, tmp_path, mode, message):
    with pytest.raises(RunError, match=message):
        run_in_process(
            ["task=toy", "method=toy_fail", f"method.mode={mode}"], tmp_path / "r", toy_conf
        )
    (run,) = runs_of(outputs, "toy")
    assert run.info.status == "FAILED"


def test_tracking_none_still_writes_results(toy_conf, outputs, tmp_path):
    (outputs / "mlflow.db").unlink()
    run_in_process(["task=toy", "tracking=none"], tmp_path / "run", toy_conf)
    assert not (outputs / "mlflow.db").exists()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "FINISHED" and results["run_id"] is None
    assert (tmp_path / "run" / "tables" / "params.csv").is_file()
