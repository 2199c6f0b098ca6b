"""A run ends with a summary a user can act on; a sweep with a table of its jobs; long
evaluations say how far they are (issue #21)."""

from __future__ import annotations

import logging

from celine_testing import celine_cli, run_in_process, runs_of


def test_a_finished_run_prints_status_primary_metric_folder_and_how_to_open_it(
    toy_conf, outputs, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    metrics = run_in_process(["task=toy"], tmp_path / "run", toy_conf)
    (run,) = runs_of(outputs, "toy")
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FINISHED:")]
    lines = summary.splitlines()
    assert lines[1].startswith("  mse = ") and lines[1].endswith("(primary)")
    assert float(lines[1].split("=")[1].split()[0]) == float(f"{metrics['mse']:.6g}")
    assert f"  w = {metrics['w']:.6g}" in lines
    assert f"  run folder: {tmp_path / 'run'}" in lines
    assert f"  MLflow run: {run.info.run_id}  (celine ui)" in lines


def test_a_failed_run_summary_names_the_error(toy_conf, outputs, tmp_path, caplog):
    import pytest

    caplog.set_level(logging.INFO)
    with pytest.raises(RuntimeError):
        run_in_process(["task=toy", "method=toy_fail"], tmp_path / "run", toy_conf)
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FAILED:")]
    assert "  error: RuntimeError: toy failure at step 3" in summary.splitlines()
    assert "  train/mse = 0.333333" in summary.splitlines()  # the partial metrics it had


def test_a_sweep_ends_with_a_table_of_its_jobs(toy_conf, outputs):
    out = celine_cli(["run", "-m", "task=toy", "method=toy_fit,toy_fail"])
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    (header,) = [i for i, line in enumerate(lines) if line.startswith("job  status")]
    assert lines[header].split()[:3] == ["job", "status", "mse"]
    rows = [lines[header + 1].split(), lines[header + 2].split()]
    assert rows[0][:2] == ["0", "FINISHED"] and rows[1][:2] == ["1", "FAILED"]
    assert "method=toy_fit" in lines[header + 1] and "method=toy_fail" in lines[header + 2]


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
