"""`celine.api.run` and `celine.api.multirun`: what `celine run` and `celine run -m` call, usable
from a notebook or a test; their results agree with the MLflow store and the run folders."""

import pytest
from celine_testing import client, runs_of

from celine import api
from celine.errors import ConfigError


def test_run_returns_what_the_store_and_the_run_folder_hold(toy_conf, outputs):
    result = api.run(["task=toy", "seed=2", "method.steps=30"])
    assert result.ok and result.status == "FINISHED" and result.error is None
    (run,) = runs_of(outputs, "toy")
    assert run.info.run_id == result.run_id and run.info.status == "FINISHED"
    assert result.metrics["mse"] == pytest.approx(run.data.metrics["mse"])
    assert result.run_dir.parent == outputs / "runs" / "toy"  # Hydra's run folder, as the CLI's
    assert (result.run_dir / ".hydra" / "overrides.yaml").is_file()
    assert (result.task, result.method, result.model, result.seed) == ("toy", "toy_fit",
                                                                       "toy_linear", 2)  # fmt: skip
    assert result.config["method"]["steps"] == 30 and result.config["task"]["n"] == 64
    assert list(result.table("params").columns)  # a table the method logged, read back


def test_a_failing_run_is_returned_failed_with_its_partial_metrics(toy_conf, outputs):
    result = api.run(["task=toy", "method=toy_fail"])
    assert result.status == "FAILED" and not result.ok
    assert "toy failure at step 3" in result.error
    assert isinstance(result.exception, RuntimeError)
    assert result.metrics["train/mse"] == pytest.approx(1 / 3)
    (run,) = runs_of(outputs, "toy")
    assert run.info.status == "FAILED" and run.info.run_id == result.run_id
    with pytest.raises(RuntimeError, match="toy failure"):
        api.run(["task=toy", "method=toy_fail"], check=True)


def test_a_bad_config_raises_before_any_run_opens(toy_conf, outputs):
    with pytest.raises(ConfigError, match="task 'toy' accepts the methods"):
        api.run(["task=toy", "method=unigram"])
    assert not list((outputs / "runs").rglob("results.json"))


def test_multirun_is_one_parent_run_with_a_child_per_job_and_a_result_each(toy_conf, outputs):
    results = api.multirun(["task=toy", "method=toy_fit,toy_fail", "seed=0,1"])
    assert [(r.method, r.seed) for r in results] == [
        ("toy_fit", 0), ("toy_fit", 1), ("toy_fail", 0), ("toy_fail", 1)]  # fmt: skip
    assert [r.status for r in results] == ["FINISHED", "FINISHED", "FAILED", "FAILED"]
    runs = {r.info.run_id: r for r in runs_of(outputs, "toy")}
    (parent,) = [r for r in runs.values() if r.data.tags.get("celine.role") == "sweep"]
    assert parent.info.status == "FAILED"  # a failed job fails the sweep's parent run
    for result in results:
        child = runs[result.run_id]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == result.status
    sweep_dir = results[0].run_dir.parent
    assert [r.run_dir for r in results] == [sweep_dir / str(i) for i in range(4)]
    assert client(outputs).get_run(results[0].run_id).data.params["seed"] == "0"


def test_multirun_config_errors_are_failed_results_not_a_stopped_sweep(toy_conf, outputs):
    results = api.multirun(["task=toy", "method=toy_fit,unigram"])
    assert [r.status for r in results] == ["FINISHED", "FAILED"]
    assert "accepts the methods" in results[1].error and results[1].run_id is None


def test_context_is_the_validated_context_of_a_run_without_a_run(toy_conf, outputs, tmp_path):
    from toy_room import ToyTask, ToyTaskConfig

    ctx = api.context(["task=toy", "seed=4", "task.n=32"], run_dir=tmp_path / "ctx")
    assert isinstance(ctx.task, ToyTask) and isinstance(ctx.task_cfg, ToyTaskConfig)
    assert ctx.seed == 4 and ctx.task_cfg.n == 32 and len(ctx.task.x) == 32
    assert ctx.hardware.device == "cpu" and ctx.run_dir == tmp_path / "ctx"
    assert not client(outputs).search_experiments(filter_string="name = 'celine/toy'")
    with pytest.raises(ConfigError, match="task.noise"):
        api.context(["task=toy", "task.noise=oops"])
