"""dynasor end to end through the runner, on a random-init tiny Llama saved as a local
checkpoint (`model=hf`), with tiny settings: the wiring, the MLflow record, the shared pool."""

import pytest
from celine_testing import compose, run_in_process, runs_of

TINY = [
    "task=dynasor",
    "model=hf",
    "task.n_calibration_per_steps=1",
    "task.n_test_per_steps=1",
    "task.max_steps=3",
    "task.pool_size=4",
    "task.max_new_tokens=6",
    "task.replay_seeds=2",
    "task.batch_size=16",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    path = tmp_path_factory.mktemp("tiny_ckpt")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_certaindex_and_fixed_budget_replay_one_pool(outputs, tmp_path, checkpoint):
    base = [*TINY, f"model.path={checkpoint}"]
    dyn = run_in_process([*base, "method.detect_at=2", "method.cap=3"], tmp_path / "dyn")
    fixed = run_in_process([*base, "method=fixed_budget", "method.cap=3"], tmp_path / "fix")
    runs = runs_of(outputs, "dynasor")
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert {"test/accuracy", "test/tokens_per_problem", "test/claim_refused"} <= set(dyn)
    # the model is untrained (random init): it solves nothing, so the run refuses to claim
    # savings at equal accuracy (issue 24: it used to report them, with within_one_se = 1)
    assert dyn["baseline/accuracy"] < 0.1 and dyn["test/claim_refused"] == 1.0
    assert not {
        "test/token_savings",
        "test/equal_accuracy",
        "test/savings_at_equal_accuracy",
    } & set(dyn)
    # the baseline run replays the very chains the Dynasor run sampled (cached pool)
    assert fixed["test/tokens_per_problem"] == pytest.approx(dyn["baseline/tokens_per_problem"])
    assert dyn["test/tokens_per_problem"] <= fixed["test/tokens_per_problem"] + 1e-9
    assert len(list((outputs / "cache" / "dynasor").glob("pool-*.json"))) == 2
    assert (tmp_path / "dyn" / "plots" / "tokens_vs_accuracy.png").is_file()
    assert (tmp_path / "dyn" / "tables" / "headline.csv").is_file()
    # the reward form alone (the reasoner's own likelihood), calibrated, on the same pool
    reward = [*base, "method.detect_at=2", "method.cap=3", "method.entropy_threshold=null",
              "method.reward_threshold=0.5"]  # fmt: skip
    rew = run_in_process(reward, tmp_path / "rew")
    assert 0.0 <= rew["calibration/threshold"] <= 1.0
    assert rew["baseline/tokens_per_problem"] == pytest.approx(fixed["test/tokens_per_problem"])


def test_tree_search_methods_replay_one_pool_of_searches(outputs, tmp_path, checkpoint):
    tree = [
        f"model.path={checkpoint}", "method.width=2", "method.pool_trees=2", "method.cap=2",
        "method.step_tokens=3",
    ]  # fmt: skip
    dyn = run_in_process(
        [*TINY, "method=certaindex_tree", *tree, "method.detect_at=1"], tmp_path / "dyn"
    )
    fixed = run_in_process([*TINY, "method=fixed_budget_tree", *tree], tmp_path / "fix")
    runs = runs_of(outputs, "dynasor")
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert {"test/accuracy", "test/tokens_per_problem", "test/searches_per_problem"} <= set(dyn)
    # the baseline replays the searches the Dynasor run made (cached), and Dynasor never
    # spends more than the cap
    assert fixed["test/tokens_per_problem"] == pytest.approx(dyn["baseline/tokens_per_problem"])
    assert dyn["test/tokens_per_problem"] <= fixed["test/tokens_per_problem"] + 1e-9
    assert 1.0 <= dyn["test/searches_per_problem"] <= 2.0
    assert len(list((outputs / "cache" / "dynasor").glob("tree-*.json"))) == 2
    assert (tmp_path / "dyn" / "plots" / "tokens_vs_accuracy.png").is_file()


def test_local_gsm8k_jsonl_is_read_and_scored(outputs, tmp_path, checkpoint):
    import json

    root = tmp_path / "gsm8k"
    root.mkdir()
    rows = [
        {
            "question": f"Tom has {i} apples and buys 2 more. How many?",
            "answer": f"{i}+2\n#### {i + 2}",
        }
        for i in range(12)
    ]
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:9]))
    (root / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows[9:]))
    overrides = [
        *TINY, f"model.path={checkpoint}", "task.corpus=gsm8k", f"task.data_root={root}",
        "method=fixed_budget", "method.cap=2",
    ]  # fmt: skip
    m = run_in_process(overrides, tmp_path / "run")
    assert 0.0 <= m["test/accuracy"] <= 1.0


def test_dynasor_cot_and_truncation_run(outputs, tmp_path, checkpoint):
    base = [*TINY, f"model.path={checkpoint}"]
    cot = [
        "method=dynasor_cot", "method.trials=1", "method.trace_step=2", "method.probe_interval=2",
        "method.probe_tokens=3", "method.grid_intervals=[2,4]", "method.grid_consistent=[2]",
        "method.max_new_tokens=null",  # the task's (6); the long reasoner's default is 320
    ]  # fmt: skip
    m = run_in_process([*base, *cot], tmp_path / "cot")
    assert m["test/tokens_per_problem"] <= 6 + 1
    # untrained: no savings claim; T and N were chosen on the calibration split's chains
    assert m["test/claim_refused"] == 1.0 and "test/token_savings" not in m
    assert (m["cot/probe_interval"], m["cot/n_consistent"]) in {(2.0, 2.0), (4.0, 2.0)}
    assert len(list((outputs / "cache" / "dynasor").glob("cot-*.json"))) == 2
    truncation = ["method=dynasor_truncation", "method.budget=4", "method.max_new_tokens=null"]
    t = run_in_process([*base, *truncation], tmp_path / "tr")
    assert t["test/tokens_per_problem"] <= 4
    assert (tmp_path / "cot" / "plots" / "cot_tokens_vs_accuracy.png").is_file()
    synthetic = [
        "task=dynasor", "method=dynasor_cot_synthetic", "method.n_problems=20",
        "method.trials=2", "method.max_tokens=4096",
    ]  # fmt: skip
    s = run_in_process(synthetic, tmp_path / "syn")
    assert s["test/token_savings"] > 0.2  # net of probe tokens
    assert s["test/token_savings_gross"] > s["test/token_savings"]


@pytest.mark.parametrize("program", ["sc", "rebase"])
def test_online_run_reports_rates_and_the_ratio(outputs, tmp_path, checkpoint, program):
    overrides = [
        *TINY, f"model.path={checkpoint}", "method=dynasor_online", "method.detect_at=2",
        "method.cap=3", "method.n_programs=8", "method.rates=[5.0,50.0,500.0]", "method.trace_seeds=2",
        "method.latency_batch_sizes=[1,2]", "method.latency_prompt_lens=[8]",
        f"method.program={program}", "method.width=2", "method.step_tokens=3",
    ]  # fmt: skip
    m = run_in_process(overrides, tmp_path / "online")
    ladder = ("fcfs", "gang_fifo", "certaindex_fcfs", "certaindex_gang", "dynasor")
    for name in ladder:
        assert m[f"online/sustainable_rate_{name}"] >= 0.0
        assert m[f"online/censored_{name}"] in (0.0, 1.0)
    assert m["latency/c0"] >= 0.0
    (run,) = runs_of(outputs, "dynasor")
    assert run.info.status == "FINISHED"
    assert (tmp_path / "online" / "plots" / "attainment_vs_rate.png").is_file()
    import pandas as pd

    per_trace = pd.read_csv(tmp_path / "online" / "tables" / "rate_sweep_per_trace.csv")
    assert len(per_trace) == 2 * 3 * 5  # trace seeds x rates x schedulers
    table = pd.read_csv(tmp_path / "online" / "tables" / "ablation_ladder.csv")
    assert list(table["scheduler"]) == list(ladder)
    assert list(table["vs"].fillna("")) == ["", *ladder[:-1]]
    # the latency model is measured once per machine + model, then read from the cache
    assert len(list((outputs / "cache" / "dynasor").glob("latency-*.csv"))) == 1
    # tree programs replay the cached searches and run more request rounds than detect + rest
    assert bool(list((outputs / "cache" / "dynasor").glob("tree-*.json"))) == (program != "sc")
    summary = pd.read_csv(tmp_path / "online" / "tables" / "online_summary.csv")
    assert (summary["serial_rounds_per_program"] >= summary["rounds_per_program"]).all()


@pytest.mark.parametrize(
    "override, key",
    [
        ("method.cap=2", "method.cap"),  # below detect_at (3)
        ("method.entropy_threshold=1.5", "method.entropy_threshold"),
        ("task.corpus=gsm8k", "task.data_root"),  # a local set needs its path
        ("method=certaindex_tree method.cap=9", "method.cap"),  # more than pool_trees (5)
        ("method=fixed_budget_tree method.program=mcts", "method.program"),
        ("method=dynasor_online method.program=mcts", "method.program"),
        ("method=dynasor_online method.program=rebase method.cap=6", "method.cap"),  # > 5 trees
        ("method=dynasor_cot model.slip_prob=2", "model.slip_prob"),
        ("engine=vllm task.engine.base_url=ftp://127.0.0.1:1", "task.engine.base_url"),
        (
            "engine=vllm task.engine.base_url=http://127.0.0.1:1 task.engine.server=true",
            "task.engine.server",
        ),  # fmt: skip
        ("task.engine.base_url=http://127.0.0.1:1", "task.engine.base_url"),  # engine=sim
    ],
)
def test_bad_input_is_refused_early_naming_the_key(override, key):
    from celine.api import ConfigError
    from celine.validation import plan

    with pytest.raises(ConfigError) as err:
        plan(compose(["task=dynasor", *override.split()]))
    assert err.value.key == key


@pytest.mark.parametrize("method", ["fixed_budget", "dynasor_online", "certaindex_tree"])
def test_engine_vllm_is_refused_by_the_methods_that_replay_pools(outputs, tmp_path, checkpoint,
                                                                 method):  # fmt: skip
    """Only dynasor_cot and certaindex (SC) run on the engine; the others would silently replay
    HF-sampled pools, so they refuse before any model or engine work."""
    from celine.api import ConfigError

    # an unreachable server: the refusal must come before anything talks to it
    over = [*TINY, f"model.path={checkpoint}", f"method={method}", "engine=vllm",
            "task.engine.base_url=http://127.0.0.1:1"]  # fmt: skip
    with pytest.raises(ConfigError) as err:
        run_in_process(over, tmp_path / method)
    assert err.value.key == "engine" and "dynasor_cot" in str(err.value)
    assert not list((outputs / "cache").glob("dynasor/pool-*.json"))


def test_dynasor_cot_against_an_unreachable_server_fails_in_one_line_naming_the_url_key(
    outputs, tmp_path, checkpoint
):
    """`engine=vllm task.engine.base_url=...` where nothing listens: the run fails (recorded
    FAILED) with one line naming the key and the URL, before any chain is generated."""
    from celine.api import RunError
    from celine.serving.vllm_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    over = [*TINY, f"model.path={checkpoint}", "method=dynasor_cot", "method.trials=1",
            "method.max_new_tokens=null", "engine=vllm", f"task.engine.base_url={url}"]  # fmt: skip
    with pytest.raises(RunError) as err:
        run_in_process(over, tmp_path / "cot")
    msg = str(err.value)
    assert f"task.engine.base_url={url!r}" in msg and "\n" not in msg
    assert [r.info.status for r in runs_of(outputs, "dynasor")] == ["FAILED"]


def test_dynasor_cot_effort_presets_and_grid_checks():
    from celine.api import ConfigError
    from celine.experiments.dynasor.config import DynasorCotConfig

    mid = DynasorCotConfig(effort="mid")
    assert (mid.n_consistent, mid.probe_interval) == (3, 64)
    with pytest.raises(ConfigError):
        DynasorCotConfig(effort="extreme")
    with pytest.raises(ConfigError):
        DynasorCotConfig(probe_interval=6, trace_step=4)
