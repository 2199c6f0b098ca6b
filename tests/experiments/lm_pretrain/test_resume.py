"""Killing `celine run task=lm_pretrain` mid-training and running the same command again resumes
from the saved state and ends at the same final step."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celine_testing import runs_of

ARGS = [
    "run", "task=lm_pretrain", "model.size=smoke", "model.steps=60", "model.seq_len=64",
    "task.eval_tokens=2000",
]  # fmt: skip


def _celine(outputs: Path, **kw):
    exe = Path(sys.executable).with_name("celine")
    env = {**os.environ, "CELINE_OUTPUTS": str(outputs), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([str(exe), *ARGS], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)  # fmt: skip


def _logged_steps(outputs: Path) -> list[int]:
    files = list((outputs / "models").glob("tiny_llama-code-smoke-*/history.jsonl"))
    if not files:
        return []
    return [json.loads(line)["step"] for line in files[0].read_text().splitlines() if line]


def test_sigterm_saves_the_state_and_the_same_command_resumes(outputs):
    proc = _celine(outputs)
    deadline = time.time() + 240
    while time.time() < deadline and not any(s >= 20 for s in _logged_steps(outputs)):
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read()[-3000:]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-3000:]
    ckpt = next((outputs / "models").glob("tiny_llama-code-smoke-*[!k]"))
    assert (ckpt / "training_state.pt").is_file(), out[-3000:]
    assert not (ckpt / "celine_meta.json").exists()
    (killed,) = runs_of(outputs, "lm_pretrain")
    assert killed.info.status == "KILLED"
    stopped_at = max(_logged_steps(outputs))
    assert 20 <= stopped_at < 60

    again = _celine(outputs)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    assert "resuming" in out
    meta = json.loads((ckpt / "celine_meta.json").read_text())
    assert meta["final_step"] == 60
    assert not (ckpt / "training_state.pt").exists()
    first, second = runs_of(outputs, "lm_pretrain")
    assert second.info.status == "FINISHED"
    # the resumed run logged only the steps after the saved state
    resumed = [m.step for m in _history(outputs, second.info.run_id, "train/loss")]
    assert min(resumed) > 10 and max(resumed) == 60


def _history(outputs, run_id, key):
    from celine_testing import client

    return client(outputs).get_metric_history(run_id, key)
