"""The real vLLM engine under Celine's scheduling hooks (celine.serving.vllm_engine and
vllm_scheduler), on a random-init smoke-size Llama saved as a checkpoint folder.

vLLM is started ONCE per pytest session (`vllm_smoke_engine` in tests/conftest.py, shared with
the dynasor engine tests; ~1-3 min on a loaded 2-core machine) with a one-sequence budget
(max_num_seqs=1), so the order in which requests finish is decided by the scheduler alone; each
test generates a few hundred tokens (well under a second of engine time). The last test shuts
the engine down (a later user restarts it).
"""

from __future__ import annotations

import importlib.util

import pytest

from celine.errors import ConfigError
from celine.serving import Request

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vLLM is not installed (the `serve` extra: pip install -e '.[serve]')",
)

LONG, SHORT = 160, 4  # output tokens


@pytest.fixture
def engine(vllm_engine):
    return vllm_engine


def prompts(*rids):
    return {rid: [5 + (7 * rid + k) % 200 for k in range(8)] for rid in rids}


def long_then_short(engine, priorities):
    """A long request at t=0 and a short one that arrives while the long one is running."""
    reqs = [Request(0, 0.0, 8, LONG), Request(1, 0.2, 8, SHORT)]
    res = engine.replay(reqs, prompts(0, 1), priorities)
    by = {r.rid: r for r in res.requests}
    # the premise: the long request was already generating when the short one arrived
    assert by[0].first_token_time < by[1].arrival
    assert [r.generated for r in (by[0], by[1])] == [LONG, SHORT]
    return by


def test_short_request_arriving_after_a_long_one_finishes_first_with_sjf_or_ltr_not_fcfs(engine):
    from celine.serving.vllm_engine import priorities_from_keys

    fcfs = long_then_short(engine, None)
    assert fcfs[0].finish_time < fcfs[1].finish_time  # one sequence: the short one waits
    assert fcfs[0].preemptions == 0

    sjf = long_then_short(engine, {0: LONG, 1: SHORT})  # oracle: true lengths
    assert sjf[1].finish_time < sjf[0].finish_time
    assert sjf[0].preemptions >= 1  # the long one was taken off for it (recompute)

    # LTR: float scores of a ranker (lower = predicted shorter) become vLLM priorities
    ranks = priorities_from_keys([0.93, -1.7])
    ltr = long_then_short(engine, {0: int(ranks[0]), 1: int(ranks[1])})
    assert ltr[1].finish_time < ltr[0].finish_time
    # the short request waited behind the long one under FCFS, not under the rank scheduler
    assert ltr[1].finish_time - ltr[1].arrival < fcfs[1].finish_time - fcfs[1].arrival


def test_starvation_rule_promotes_a_request_that_waited_past_its_threshold(engine):
    # the low-priority request (rid 1) would wait for all of rid 0's tokens without the rule
    reqs = [Request(0, 0.0, 8, LONG), Request(1, 0.0, 8, 8)]
    prio = {0: 0, 1: 5}
    off = engine.replay(reqs, prompts(0, 1), prio)
    on = engine.replay(reqs, prompts(0, 1), prio, starvation_threshold=5, priority_quantum=3)
    o = {r.rid: r for r in off.requests}
    n = {r.rid: r for r in on.requests}
    assert o[1].first_token_time > o[0].finish_time
    assert off.iterations["promotions"].sum() == 0
    # with S=5, P=3: promoted after 5 idle steps, it gets tokens before rid 0 is done ...
    assert on.iterations["promotions"].sum() >= 1
    assert n[1].first_token_time < n[0].finish_time
    # ... within a few steps of S (it runs on its promotion), against ~LONG steps without it
    steps_before_first = int((on.iterations["time"] < n[1].first_token_time).sum())
    assert steps_before_first <= 2 * (5 + 1)
    assert int((off.iterations["time"] < o[1].first_token_time).sum()) >= LONG
    assert n[0].preemptions >= 1


def test_engine_without_vllm_gives_one_line_naming_the_extra(monkeypatch):
    from celine.serving import engine_config

    real = importlib.util.find_spec
    monkeypatch.setattr(
        engine_config.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vllm" else real(name, *a),
    )
    with pytest.raises(ConfigError) as err:
        engine_config.EngineConfig(name="vllm")
    msg = str(err.value)
    assert "\n" not in msg and "[serve]" in msg and "engine" in msg


def test_engine_processes_are_gone_after_a_replay_that_raised(engine):
    """Last in the module: it shuts the module's engine down."""
    assert engine.alive_pids(), "the engine should be running before the failure"
    pids = set(engine.pids)
    from vllm.exceptions import VLLMValidationError

    too_long = Request(0, 0.0, 300, 4)  # prompt longer than max_model_len=256: vLLM refuses it
    with pytest.raises(VLLMValidationError), engine:
        engine.replay([too_long], {0: list(range(5, 305))})
    assert engine.engine is None
    assert pids and not engine.alive_pids()
