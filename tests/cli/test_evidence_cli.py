"""`celine compare` with statistics, `celine reproduce` on the toy room, and metrics reported
missing (`Result.missing`) end to end."""

import json

import pandas as pd
import pytest
from celine_testing import artifact_paths, run_in_process, runs_of
from scipy import stats as sps


def test_a_method_may_report_a_declared_metric_missing_with_its_reason(toy_conf, outputs, tmp_path):
    metrics = run_in_process(
        ["task=toy", "method=toy_fail", "method.mode=reported_missing"], tmp_path / "run", toy_conf
    )
    assert "mse" not in metrics
    (run,) = runs_of(outputs, "toy")
    assert run.info.status == "FINISHED" and "mse" not in run.data.metrics
    assert run.data.tags["celine.missing.mse"] == "baseline at chance"
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert doc["missing"] == {"mse": "baseline at chance"}


def test_missing_must_name_a_declared_metric(toy_conf, outputs, tmp_path):
    from celine.errors import RunError

    with pytest.raises(RunError, match="does not declare: accuracy"):
        run_in_process(
            ["task=toy", "method=toy_fail", "method.mode=undeclared_missing"],
            tmp_path / "run",
            toy_conf,
        )


def _runs(toy_conf, tmp_path, *overrides_list):
    for i, overrides in enumerate(overrides_list):
        run_in_process(["task=toy", *overrides], tmp_path / f"run{i}", toy_conf)


def _compare(capsys, *args):
    from celine.commands.compare import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_compare_with_a_baseline_prints_n_mean_interval_paired_difference_and_p(
    toy_conf, outputs, tmp_path, capsys
):
    grid = [[f"method={m}", f"seed={s}"] for m in ("toy_fit", "toy_mean") for s in range(3)]
    _runs(toy_conf, tmp_path, *grid, ["method=toy_fit", "seed=0"])  # the last: a rerun of seed 0
    rc, out, err = _compare(capsys, "task=toy", "--baseline", "toy_mean", "--out", str(tmp_path))
    assert rc == 0, err
    assert "paired t-test" in out and "(baseline)" in out and "3 pairs" in out
    summary = pd.read_csv(next(tmp_path.glob("toy-*[0-9].csv"))).set_index("method")
    assert summary.loc["toy_fit", "n"] == 3  # the rerun of seed 0 is not a fourth seed
    runs = runs_of(outputs, "toy")  # oldest first: a later run of a seed replaces the earlier
    by = {
        (r.data.tags["celine.method"], r.data.params["seed"]): r.data.metrics["mse"] for r in runs
    }
    seeds = ["0", "1", "2"]
    ref = sps.ttest_rel([by["toy_fit", s] for s in seeds], [by["toy_mean", s] for s in seeds])
    assert summary.loc["toy_fit", "mse p"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert summary.loc["toy_fit", "mse diff"] < 0  # the fit beats the flat line
    assert next(tmp_path.glob("toy-*.png")).stat().st_size > 1000
    assert "| toy_fit | 3 |" in next(tmp_path.glob("toy-*.md")).read_text()
    for where, kept in (
        ("method=toy_fit", {"toy_fit"}),
        ("method=toy_mean,toy_fit", {"toy_fit", "toy_mean"}),
    ):
        sub = tmp_path / where.replace(",", "_")
        rc, _, err = _compare(capsys, "task=toy", "--where", where, "--out", str(sub))
        assert rc == 0, err
        assert set(pd.read_csv(next(sub.glob("toy-*[0-9].csv"))).method) == kept


def test_compare_refuses_a_store_that_does_not_exist_and_does_not_create_it(
    toy_conf, tmp_path, capsys
):
    db = tmp_path / "nowhere" / "mlflow.db"
    rc, _, err = _compare(capsys, "task=toy", "--uri", f"sqlite:///{db}")
    assert rc == 2 and str(db) in err
    assert not db.exists()


def test_compare_honours_tracking_experiment(toy_conf, outputs, tmp_path, capsys):
    _runs(toy_conf, tmp_path, ["tracking.experiment=mine"])
    rc, out, _ = _compare(capsys, "task=toy", "--out", str(tmp_path))
    assert rc == 1 and "no finished runs" in out
    rc, out, err = _compare(capsys, "task=toy", "tracking.experiment=mine", "--out", str(tmp_path))
    assert rc == 0 and "from mine" in out, err
    rc, out, _ = _compare(capsys, "task=toy", "--experiment", "mine", "--out", str(tmp_path))
    assert rc == 0 and "from mine" in out


def test_compare_shows_a_reported_missing_metric_as_missing(toy_conf, outputs, tmp_path, capsys):
    fail = ["method=toy_fail", "method.mode=reported_missing"]
    _runs(toy_conf, tmp_path, [*fail, "seed=0"], [*fail, "seed=1"])
    rc, out, err = _compare(capsys, "task=toy", "--out", str(tmp_path))
    assert rc == 0, err
    assert "missing (2 of 2: baseline at chance)" in out


def test_reproduce_runs_the_headline_preset_as_one_sweep_and_writes_the_table(
    toy_conf, outputs, monkeypatch, capsys
):
    from celine.commands import reproduce

    monkeypatch.setattr("sys.argv", ["celine"])  # the sweep sets it; give it back afterwards
    assert reproduce.main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "toy" in listing and "0.1 min" in listing
    # an extra override passes through to every job
    assert reproduce.main(["task=toy", "task.n=32"]) == 0
    out = capsys.readouterr().out
    runs = runs_of(outputs, "toy")
    (parent,) = [r for r in runs if r.data.tags.get("celine.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and {c.data.params["task.n"] for c in children} == {"32"}
    sweep_dir = next((outputs / "multiruns" / "toy").iterdir())
    table = pd.read_csv(sweep_dir / "headline.csv").set_index("method")
    assert list(table["n"]) == [3, 3]
    assert table.loc["toy_fit", "mse diff"] < 0 and table.loc["toy_fit", "mse p"] < 0.05
    md = (sweep_dir / "headline.md").read_text()
    assert "| toy_fit | 3 |" in md and "| toy_fit | 3 |" in out and "paired t-test" in out
    assert {"headline/headline.md", "headline/headline.csv", "headline/headline.png"} <= (
        artifact_paths(outputs, parent.info.run_id)
    )


def test_reproduce_names_the_tasks_with_presets_for_an_unknown_one(toy_conf, capsys):
    from celine.commands import reproduce

    assert reproduce.main(["task=nope"]) == 2
    err = capsys.readouterr().err
    assert "toy" in err and "mfdmc" in err
