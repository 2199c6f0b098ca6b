"""The room's headline claim: under queueing, ranking requests by a ListMLE-trained predictor of
their output length (ltr) lowers the mean latency per output token well below FCFS.

Fast (CI): the simulator at smoke scale on a ShareGPT-style file whose answer length follows its
prompt, a random-init tiny Llama as the served model. Slow twin: the same pipeline end to end on
the real vLLM engine (engine=vllm): tagged with the engine, the engine log and the simulator
comparison attached, the rank scheduler preempting on the engine. On the real engine the claim
itself is not reproduced on this loaded machine (README), so no latency direction is pinned there.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil

import pandas as pd
import pytest
from celine_testing import artifact_paths, run_in_process, runs_of

SMOKE = [
    "task=llm_sched", "task.latency_batch_sizes=[1,4]", "task.latency_prompt_lens=[8,32]",
    "task.latency_repeats=1", "task.num_requests=80", "task.burst_requests=0",
    "task.load_factors=[1.5]", "task.max_num_seqs=4", "task.max_new_tokens=96",
    "method.epochs=6", "method.d_model=32", "method.layers=1", "method.heads=2",
    "method.dim_feedforward=64", "method.max_length=16", "method.compare=[fcfs,oracle_sjf]",
    "method.tau_sweep=[]",
]  # fmt: skip


def predictable_sharegpt(path, n=240, seed=0):
    """Prompts with k 'more's get ~10k+4 words back (noise +-2): a learnable order."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = rng.randint(0, 7)
        words = max(1, 4 + 10 * k + rng.randint(-2, 2))
        rows.append({"conversations": [
            {"from": "human", "value": f"question {i}: tell me " + "more " * k},
            {"from": "gpt", "value": "ok " * words},
        ]})  # fmt: skip
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture
def setup(tmp_path, mlflow_template, monkeypatch):
    from celine.llm.tiny_llama import tiny_test_model

    out = tmp_path / "outputs"
    out.mkdir()
    shutil.copy(mlflow_template, out / "mlflow.db")
    monkeypatch.setenv("CELINE_OUTPUTS", str(out))
    model, tok = tiny_test_model(hidden=128)  # head_dim 32: vLLM's CPU attention has it
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    data = predictable_sharegpt(tmp_path / "sharegpt.json")
    return out, ["model=hf", f"model.path={tmp_path / 'tiny'}", f"task.data_root={data}"]


def test_headline_ltr_beats_fcfs_latency_per_token_under_load(setup, tmp_path):
    out, extra = setup
    m = run_in_process([*SMOKE, *extra], tmp_path / "run")
    assert m["predictor/test_tau"] > 0.5  # the ranker learned the order
    # the claim, with a margin: FCFS's mean latency per token >= 1.2x ltr's at load 1.5
    assert m["high_load/fcfs_over_ltr"] >= 1.2
    # and ltr stays near the oracle SJF bound (within 30%)
    assert m["high_load/oracle_sjf_over_ltr"] >= 1 / 1.3


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs the serve extra")
def test_headline_pipeline_on_the_real_vllm_engine(setup, tmp_path):
    out, extra = setup
    over = [*SMOKE, *extra, "engine=vllm", "task.engine.capacity_requests=24",
            "hardware.threads=1"]  # fmt: skip
    m = run_in_process(over, tmp_path / "run")
    (run,) = runs_of(out, "llm_sched")
    assert run.info.status == "FINISHED"
    assert run.data.tags["celine.engine"] == "vllm"
    assert run.data.tags["celine.engine_version"].startswith("vllm")
    assert {"engine/vllm_engine.log", "tables/engine_vs_sim.csv"} <= artifact_paths(
        out, run.info.run_id
    )
    # the latency ratio itself is not asserted: on a loaded shared machine the engine's timings
    # swung it from 1.44x to 0.09x between two runs (README); what the engine did is checked:
    table = pd.read_csv(tmp_path / "run" / "tables" / "serving_replicates.csv")
    preempted = table.groupby("scheduler")["preemptions"].sum()
    assert preempted["fcfs"] == 0 and preempted["ltr"] > 0  # ltr re-sorted the running set
    assert "engine_vs_sim/max_abs_error" in m and "high_load_sim/fcfs_over_ltr" in m


def test_engine_that_fails_to_start_marks_the_run_failed_with_its_log(setup, tmp_path):
    """vLLM refuses a context longer than the checkpoint's positions while it builds its config
    (in this process: no engine process is started), so this costs only vLLM's import."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("needs the serve extra")
    from celine.serving.vllm_engine import EngineStartError

    out, extra = setup
    task_only = [o for o in SMOKE if not o.startswith("method.")]
    over = [*task_only, *extra, "method=fcfs", "engine=vllm", "task.engine.max_model_len=100000"]
    with pytest.raises(EngineStartError, match="engine log"):
        run_in_process(over, tmp_path / "run")
    (run,) = runs_of(out, "llm_sched")
    assert run.info.status == "FAILED"
    assert "engine/vllm_engine.log" in artifact_paths(out, run.info.run_id)
    log = (tmp_path / "run" / "engine" / "vllm_engine.log").read_text()
    assert "max_model_len" in log or "100000" in log
