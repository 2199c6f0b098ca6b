"""Real services for the cluster tests: an `mlflow server` and a one-node SLURM cluster, each
started once per session on this machine and stopped at its end.

The SLURM recipe is README.md's "A one-node SLURM" (Debian `slurm-wlm` and `munge`, as root):
munged as the munge user, then slurmctld and slurmd in the foreground with a generated
slurm.conf whose state, spool, pid and log files live in a temporary folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s\n{tail}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@dataclass
class MlflowServer:
    uri: str
    artifacts: Path  # the server's --artifacts-destination


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory, mlflow_template) -> MlflowServer:
    """`mlflow server` on 127.0.0.1 and a free port, serving artifacts from its own folder."""
    base = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(mlflow_template, base / "mlflow.db")  # migrated already: no 7 s of migrations
    port, log = free_port(), base / "server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
        "--artifacts-destination", str(base / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    try:
        _wait_for(healthy, 120, "mlflow server", log)
        yield MlflowServer(uri=uri, artifacts=base / "artifacts")
    finally:
        _stop(proc)


# ----------------------------------------------------------------------------------- SLURM

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")

SLURM_CONF = """\
ClusterName=celine-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
NodeName={host} CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _munge_works() -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=True)
        subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, timeout=10, check=True)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


MUNGED_PID = Path("/run/munge/munged.pid")


def _start_munged() -> bool:
    """munged as the munge user with the key and run folder where Debian's package puts them.
    True when this call started it (and the session stops it)."""
    if _munge_works():
        return False  # already running (the machine's own)
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
    subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, timeout=30)
    _wait_for(_munge_works, 30, "munged")
    return True


def _stop_munged() -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(MUNGED_PID.read_text().strip()), signal.SIGTERM)


@dataclass
class SlurmCluster:
    conf: Path
    host: str


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> SlurmCluster:
    missing = [exe for exe in SLURM_BINARIES if shutil.which(exe) is None]
    if missing:
        pytest.skip(
            f"SLURM is not installed here ({', '.join(missing)} not on PATH): "
            "apt-get install -y slurm-wlm munge (what .ci/run does)"
        )
    if os.geteuid() != 0:
        pytest.skip("the one-node test cluster runs munged, slurmctld and slurmd as root")
    base = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (base / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = base / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=host,
            base=base,
            cpus=min(2, os.cpu_count() or 1),
            ctld_port=free_port(),
            slurmd_port=free_port(),
        )  # fmt: skip
    )
    started_munged = _start_munged()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)  # sbatch, squeue, scancel (and submitit's calls) read it
    daemons = []
    try:
        for daemon in ("slurmctld", "slurmd"):
            out = (base / f"{daemon}.out").open("w")
            daemons.append(
                subprocess.Popen(
                    [daemon, "-D", "-f", str(conf)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )

        def node_idle() -> bool:
            for proc in daemons:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited: see {base}")
            out = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=10
            )
            return out.stdout.strip().rstrip("*") == "idle"

        _wait_for(node_idle, 60, "the SLURM node", base / "slurmctld.log")
        yield SlurmCluster(conf=conf, host=host)
    finally:
        for proc in reversed(daemons):
            _stop(proc)
        if started_munged:
            _stop_munged()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
