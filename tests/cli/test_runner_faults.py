"""Faults a new user met with the runner (issue #21), each pinned by a subprocess test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celine_testing import celine_cli, runs_of

CELINE = str(Path(sys.executable).with_name("celine"))


def _popen(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [CELINE, *args], env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )  # fmt: skip


def _sigint_as_in_a_terminal() -> None:
    """A shell starts background jobs with SIGINT ignored, and children inherit that (Python then
    installs no KeyboardInterrupt handler): give the child a terminal's default disposition, so
    the test does not depend on how the suite itself was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_two_runs_started_at_once_on_a_fresh_store_both_finish(toy_conf, tmp_path):
    outputs = tmp_path / "outputs"  # no mlflow.db yet: both processes find the store missing
    env = {"CELINE_OUTPUTS": str(outputs)}
    procs = [_popen(["run", "task=toy", f"seed={seed}"], env) for seed in (0, 1)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out[-3000:]
    runs = runs_of(outputs, "toy")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1"]


def test_ctrl_c_during_a_sweep_leaves_the_parent_and_the_running_job_killed(toy_conf, outputs):
    # 400 steps x 0.05 s: the first job is still running when the signal comes
    proc = _popen(["run", "-m", "task=toy", "seed=0,1", "method.steps=400",
                   "method.step_sleep=0.05"], {})  # fmt: skip
    deadline = time.monotonic() + 120
    log = None
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((outputs / "multiruns" / "toy").glob("*/0/celine.log"))
        if logs and "run toy_fit" in logs[0].read_text():
            log = logs[0]
            break
        time.sleep(0.2)
    assert log is not None and proc.poll() is None, proc.communicate()[0][-3000:]
    time.sleep(0.5)  # inside the training loop
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert "Traceback" not in out
    runs = runs_of(outputs, "toy")
    parents = [r for r in runs if r.data.tags.get("celine.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    assert [c.info.status for c in children] == ["KILLED"]  # the second job never started
    results = json.loads((log.parent / "results.json").read_text())
    assert results["status"] == "KILLED"


def test_run_help_without_a_task_prints_usage():
    out = celine_cli(["run", "--help"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stdout + out.stderr
    assert "task=NAME" in out.stdout and "lm_pretrain" in out.stdout


def test_run_help_with_a_task_is_hydras_help(toy_conf):
    out = celine_cli(["run", "task=toy", "--help"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stdout + out.stderr
    assert "toy_fit" in out.stdout  # the composed config of the toy task


def test_bash_completion_installs_and_completes_config_groups(toy_conf):
    install = celine_cli(["run", "-sc", "install=bash"])
    assert install.returncode == 0, install.stderr[-3000:]
    assert "hydra_bash_completion" in install.stdout and install.stdout.rstrip().endswith("celine")
    # what the installed function runs on <TAB>: the program's first word with -sc query=bash
    query = celine_cli(
        ["-sc", "query=bash"], env={"COMP_LINE": "celine run tas", "COMP_POINT": "14"}
    )
    assert query.returncode == 0, query.stderr[-3000:]
    assert "task=" in query.stdout.split()
    options = celine_cli(
        ["-sc", "query=bash"], env={"COMP_LINE": "celine run task=", "COMP_POINT": "16"}
    )
    assert options.returncode == 0, options.stderr[-3000:]
    assert {"task=toy", "task=lm_pretrain"} <= set(options.stdout.split())


def test_ls_into_a_closed_pipe_ends_quietly():
    # `celine ls | head -1`: the reader is gone before the listing is written
    ls = subprocess.Popen([CELINE, "ls"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ls.stdout.close()
    _, err = ls.communicate(timeout=60)
    assert b"BrokenPipeError" not in err and b"Traceback" not in err, err.decode()[-2000:]
    assert ls.returncode == 0
