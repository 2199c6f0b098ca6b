"""A run ends with a summary a user can act on; a sweep with a table of its jobs; long
evaluations say how far they are (issue #21)."""

from __future__ import annotations

import logging

from celine_testing import run_in_process, runs_of


def _summary(text: str, status: str) -> list[str]:
    """The summary block a run logs: its first line starts with `STATUS:`, the rest are indented.
    Read from the process's stderr, since a Hydra job installs its own log handlers."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if f"] {status}:" in line)
    block = [status + ":" + lines[start].split(f"] {status}:", 1)[1]]
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line)
    return block


def test_a_finished_run_prints_status_primary_metric_folder_and_how_to_open_it(
    toy_conf, outputs, tmp_path, capfd
):
    metrics = run_in_process(["task=toy"], tmp_path / "run", toy_conf)
    (run,) = runs_of(outputs, "toy")
    lines = _summary(capfd.readouterr().err, "FINISHED")
    assert lines[1].startswith("  mse = ") and lines[1].endswith("(primary)")
    assert float(lines[1].split("=")[1].split()[0]) == float(f"{metrics['mse']:.6g}")
    assert f"  w = {metrics['w']:.6g}" in lines
    assert f"  run folder: {tmp_path / 'run'}" in lines
    assert f"  MLflow run: {run.info.run_id}  (celine ui)" in lines


def test_a_failed_run_summary_names_the_error(toy_conf, outputs, tmp_path, capfd):
    import pytest

    with pytest.raises(RuntimeError):
        run_in_process(["task=toy", "method=toy_fail"], tmp_path / "run", toy_conf)
    lines = _summary(capfd.readouterr().err, "FAILED")
    assert "  error: RuntimeError: toy failure at step 3" in lines
    assert "  train/mse = 0.333333" in lines  # the partial metrics it had


def test_a_sweep_table_has_a_row_per_job_primary_metric_first(tmp_path):
    # the job folders a sweep leaves: results.json and Hydra's overrides.yaml
    import json

    from celine.summary import sweep_table
    from celine.tracking.callbacks import sweep_rows

    jobs = [
        ("0", "FINISHED", {"w": 2.0, "mse": 0.01}, ["method=toy_fit"]),
        ("1", "FAILED", {"train/mse": 0.5}, ["method=toy_fail"]),
        ("10", "FINISHED", {"w": 1.5, "mse": 0.02}, ["method=toy_fit", "seed=1"]),
    ]
    for job, status, metrics, overrides in jobs:
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / "results.json").write_text(
            json.dumps({"status": status, "metrics": metrics})
        )
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))
    lines = sweep_table(sweep_rows(tmp_path, primary="mse")).splitlines()
    assert lines[0].split() == ["job", "status", "mse", "w", "train/mse", "overrides"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["0", "FINISHED", "0.01"],
        ["1", "FAILED", "-"],
        ["10", "FINISHED", "0.02"],
    ]  # numeric job order, the primary metric first even where a method logged it last
    assert lines[3].endswith("method=toy_fit seed=1")


def test_progress_reports_fraction_and_time_left(caplog):
    from celine.llm.evaluate import Progress

    caplog.set_level(logging.INFO, logger="celine.llm.evaluate")
    progress = Progress("perplexity, batches", total=8, every_s=0.0)
    progress.update(2)
    progress.update(8)  # the end is not announced: the caller reports the result
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("perplexity, batches: 2/8 (25%)") and "left" in message
    quiet = Progress("x", total=8, every_s=3600.0)
    quiet.update(4)
    assert len(caplog.records) == 1  # a short evaluation stays silent
