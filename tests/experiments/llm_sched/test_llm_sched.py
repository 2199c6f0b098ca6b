"""llm_sched end to end on the CPU (a random-init tiny Llama saved as a local checkpoint, tiny
settings), and bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from celine_testing import run_in_process, runs_of

TASK_FAST = [
    "task=llm_sched",
    "task.latency_batch_sizes=[1,4]", "task.latency_prompt_lens=[8,32]", "task.latency_repeats=1",
    "task.num_requests=60", "task.burst_requests=80", "task.synthetic_target=10",
    "task.load_factors=[0.7,1.5]", "task.max_num_seqs=8",
]  # fmt: skip
FAST = [
    *TASK_FAST,
    "method.epochs=1", "method.d_model=16", "method.layers=1", "method.heads=2",
    "method.dim_feedforward=32", "method.max_length=16",
]  # fmt: skip


@pytest.fixture(scope="module")
def shared_outputs(tmp_path_factory, mlflow_template):
    """One outputs folder for the module (traces and latency measurements are cached there)."""
    out = tmp_path_factory.mktemp("llm_sched_outputs")
    shutil.copy(mlflow_template, out / "mlflow.db")
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """`model=hf` on a random-init 2-layer Llama with its tokenizer: no training, no cache."""
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    path = tmp_path_factory.mktemp("tiny_hf")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return ["model=hf", f"model.path={path}"]


@pytest.fixture
def outputs_env(shared_outputs, monkeypatch):
    monkeypatch.setenv("CELINE_OUTPUTS", str(shared_outputs))
    return shared_outputs


def sharegpt(path, n=40):
    rows = [
        {"conversations": [{"from": "human", "value": "tell me " + "more " * (i % 7)},
                           {"from": "gpt", "value": "ok " * (3 + (i * 5) % 23)}]}
        for i in range(n)
    ]  # fmt: skip
    rows.append({"conversations": [{"from": "gpt", "value": "no user turn"}]})  # skipped
    path.write_text(json.dumps(rows))
    return path


def test_ltr_run_with_every_baseline_on_a_sharegpt_file(outputs_env, model_dir, tmp_path):
    data = sharegpt(tmp_path / "sharegpt.json")
    overrides = [*FAST, *model_dir, f"task.data_root={data}", "method.compare=[fcfs,oracle_sjf,sched_prompt_len]",
                 "method.tau_sweep=[0.0,1.0]"]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "run")
    (run,) = runs_of(outputs_env, "llm_sched")
    assert run.info.status == "FINISHED"
    for key in ("high_load/mean_latency_per_token", "burst/p90_latency", "predictor/test_tau",
                "high_load/fcfs_over_ltr", "tau/oracle_sjf", "latency/c0"):  # fmt: skip
        assert key in run.data.metrics, key
    assert metrics["tau/oracle_sjf"] == pytest.approx(1.0)
    for name in ("latency_vs_rate", "tau_sweep", "training"):
        assert (tmp_path / "run" / "plots" / f"{name}.png").is_file()
    assert (tmp_path / "run" / "tables" / "comparison.csv").is_file()


def test_fcfs_on_a_generated_trace_is_cached(outputs_env, model_dir, tmp_path):
    gen = [*TASK_FAST, *model_dir, "method=fcfs", "task.num_prompts=24", "task.max_new_tokens=6",
           "task.max_prompt_tokens=64", "task.few_shot_fraction=0.5", "task.max_shots=1"]  # fmt: skip
    first = run_in_process(gen, tmp_path / "a")
    traces = list((outputs_env / "cache" / "llm_sched").glob("trace-*.json"))
    assert len(traces) == 1
    again = run_in_process(gen, tmp_path / "b")  # same trace, same latency model: same result
    assert again["high_load/mean_latency_per_token"] == first["high_load/mean_latency_per_token"]


def test_bad_config_is_refused_early(outputs_env, model_dir, tmp_path):
    from celine.api import ConfigError

    with pytest.raises(ConfigError, match="kv_capacity_tokens"):
        run_in_process([*FAST, *model_dir, "task.kv_capacity_tokens=100"], tmp_path / "bad")
    with pytest.raises(ConfigError, match="method.compare"):
        run_in_process([*FAST, *model_dir, "method.compare=[nope]"], tmp_path / "bad2")
    with pytest.raises(ConfigError, match="task.trace"):
        run_in_process([*FAST, *model_dir, "task.trace=nope"], tmp_path / "bad3")


def test_gold_trace_lengths_follow_the_question_not_the_prompt():
    """task.trace=gold: each output length is its gold chain's tokens (+ EOS), capped; the
    question's number of steps decides it while few-shot examples make the prompt length a
    weak predictor: the property every scheduler comparison on this trace relies on."""
    from scipy.stats import spearmanr

    from celine.experiments.llm_sched.config import LLMSchedTaskConfig
    from celine.experiments.llm_sched.data import gold_trace
    from celine.experiments.llm_sched.gold_trace import gold_records
    from celine.llm.tiny_llama import tiny_test_model

    _, tok = tiny_test_model()
    cfg = LLMSchedTaskConfig(trace="gold", num_prompts=200, max_new_tokens=128)
    df = gold_trace(cfg, tok)
    recs = list(gold_records(200, cfg.trace_seed, cfg.few_shot_fraction, cfg.max_shots))
    want = [min(len(tok(r["output"])["input_ids"]) + 1, 128) for r in recs]
    assert df["output_len"].tolist() == want
    assert spearmanr(df["steps"], df["output_len"]).statistic > 0.8
    assert abs(spearmanr(df["prompt_len"], df["output_len"]).statistic) < 0.5
    assert gold_trace(cfg, tok).equals(df)  # deterministic
