"""The console script end to end, in subprocesses, against temporary stores."""

import json
import subprocess
import sys

import pytest
from celine_testing import celine_cli, client, runs_of

HEAVY = ("torch", "transformers", "triton", "monai")


def test_ls_and_validate_import_no_heavy_package():
    code = (
        "import sys, contextlib, io\n"
        "from celine.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['ls']) == 0 and main(['validate']) == 0\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ls_lists_tasks_methods_and_metric_directions():
    out = celine_cli(["ls"])
    assert out.returncode == 0
    assert "lm_pretrain" in out.stdout and "pretrain, evaluate, unigram" in out.stdout
    assert "test/perplexity" in out.stdout and "lower is better" in out.stdout
    assert "tiny_reasoner" in out.stdout and "cpu" in out.stdout


def test_unknown_task_lists_the_tasks_without_a_traceback(outputs):
    out = celine_cli(["run", "task=nope"])
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "nope" in text and "lm_pretrain" in text and "Traceback" not in text


def test_method_not_accepted_lists_the_methods_without_a_traceback(outputs):
    out = celine_cli(["run", "task=lm_pretrain", "method=toy_fit"], env={"CELINE_PLUGINS": ""})
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Traceback" not in text
    assert "toy_fit" in text  # Hydra: no such option, listing the methods there are


def test_method_of_another_task_is_refused_by_name(toy_conf, outputs):
    out = celine_cli(["run", "task=toy", "method=unigram"])
    assert out.returncode == 2
    text = out.stdout + out.stderr
    assert "Traceback" not in text
    assert "task 'toy' accepts the methods toy_fit, toy_fail" in text
    assert not (outputs / "runs").exists() or not any((outputs / "runs").rglob("results.json"))


def test_full_error_shows_the_traceback(toy_conf, outputs):
    out = celine_cli(["run", "task=toy", "method=unigram"], env={"HYDRA_FULL_ERROR": "1"})
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_single_run_finishes_and_compare_shows_it(toy_conf, outputs, tmp_path):
    out = celine_cli(["run", "task=toy", "method.steps=30"])
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = runs_of(outputs, "toy")
    assert run.info.status == "FINISHED" and "mse" in run.data.metrics
    run_dir = next((outputs / "runs" / "toy").iterdir())
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert "run toy_fit.toy_linear.cpu" in (run_dir / "celine.log").read_text()
    cmp = celine_cli(["compare", "task=toy", "--out", str(tmp_path / "cmp")])
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    csv = next((tmp_path / "cmp").glob("toy-*-runs.csv"))
    import pandas as pd

    table = pd.read_csv(csv)
    assert len(table) == 1 and table.loc[0, "method"] == "toy_fit"
    assert table.loc[0, "mse"] == pytest.approx(run.data.metrics["mse"])
    assert next((tmp_path / "cmp").glob("toy-*.png")).stat().st_size > 1000


def _sweep_runs(outputs):
    runs = runs_of(outputs, "toy")
    parents = [r for r in runs if r.data.tags.get("celine.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_sweep_has_one_parent_and_a_finished_child_per_job(toy_conf, outputs):
    out = celine_cli(["run", "-m", "task=toy", "seed=0,1"])
    assert out.returncode == 0, out.stderr[-2000:]
    (parent,), children = _sweep_runs(outputs)
    assert parent.info.status == "FINISHED"
    assert len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.params["seed"] for c in children) == ["0", "1"]
    sweep_dir = next((outputs / "multiruns" / "toy").iterdir())
    assert (sweep_dir / "multirun.yaml").is_file() and (sweep_dir / "sweep_summary.csv").is_file()


def test_sweep_with_a_failing_job_finishes_the_others_and_exits_non_zero(toy_conf, outputs):
    out = celine_cli(["run", "-m", "task=toy", "method=toy_fit,toy_fail"])
    assert out.returncode == 1
    (parent,), children = _sweep_runs(outputs)
    assert parent.info.status == "FAILED"
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    sweep_dir = next((outputs / "multiruns" / "toy").iterdir())
    statuses = [
        json.loads(p.read_text())["status"] for p in sorted(sweep_dir.glob("*/results.json"))
    ]
    assert statuses == ["FINISHED", "FAILED"]


def test_submitit_local_launcher_runs_children_in_their_own_processes(toy_conf, outputs):
    out = celine_cli(["run", "-m", "task=toy", "seed=0,1", "cluster=submitit_local"])
    assert out.returncode == 0, out.stderr[-3000:]
    (parent,), children = _sweep_runs(outputs)
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    sweep_dir = next((outputs / "multiruns" / "toy").iterdir())
    assert any((sweep_dir / ".submitit").iterdir())  # submitit's own job folders
    assert client(outputs).get_run(parent.info.run_id).info.status == "FINISHED"


def test_joblib_launcher_runs_jobs_in_parallel_workers(toy_conf, outputs):
    out = celine_cli(["run", "-m", "task=toy", "seed=0,1", "hydra/launcher=joblib",
                      "hydra.launcher.n_jobs=2"])  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (parent,), children = _sweep_runs(outputs)
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    assert client(outputs).get_run(parent.info.run_id).info.status == "FINISHED"
