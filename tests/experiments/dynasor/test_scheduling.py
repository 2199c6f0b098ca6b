"""Programs, policies and the online schedulers in the shared serving simulator."""

import pytest

from celine.experiments.dynasor.online import (
    FCFSRequests,
    GangFIFO,
    attainment,
    simulate,
)
from celine.experiments.dynasor.pool import ProblemPool
from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    FixedBudgetPolicy,
    SelfConsistencyProgram,
    run_to_completion,
)
from celine.serving import LatencyModel, Request, Simulator, StaticWorkload

MS = 1e-3


def _program_latencies(result):
    done: dict[int, float] = {}
    for r in result.requests:
        done[r.program] = max(done.get(r.program, 0.0), r.finish_time)
    return done


# D4 ------------------------------------------------------------------------------------------
def test_gang_scheduling_worked_example():
    """Paper Fig. 16: batch size 2; P1 has two 4 ms requests, P2 two 5 ms ones, all at t=0
    (arriving interleaved). Gang: P1 ends at 4, P2 at 9 (mean 6.5 ms). Interleaved (request
    FCFS): P1 ends at 8, P2 at 10 (mean 9 ms). One token per 1 ms iteration."""
    lat = LatencyModel(c0=MS, c_prefill=0.0, c_decode=0.0, c_kv=0.0)
    reqs = [
        Request(rid=0, arrival=0.0, prompt_len=1, output_len=4, program=1),
        Request(rid=1, arrival=0.0, prompt_len=1, output_len=5, program=2),
        Request(rid=2, arrival=0.0, prompt_len=1, output_len=4, program=1),
        Request(rid=3, arrival=0.0, prompt_len=1, output_len=5, program=2),
    ]
    means = {}
    for sched in (GangFIFO(), FCFSRequests()):
        res = Simulator(lat, sched, max_num_seqs=2).run(StaticWorkload(reqs))
        done = _program_latencies(res)
        means[sched.name] = sum(done.values()) / 2 / MS
        if sched.name == "gang_fifo":
            assert done[1] / MS == pytest.approx(4) and done[2] / MS == pytest.approx(9)
        else:
            assert done[1] / MS == pytest.approx(8) and done[2] / MS == pytest.approx(10)
    assert means == {"gang_fifo": pytest.approx(6.5), "fcfs": pytest.approx(9.0)}


def _pool(answers, tokens, answer=1):
    return ProblemPool("q", answer, 1, 4, list(answers), list(tokens), [0.5] * len(tokens))


def test_certaindex_policy_stops_certain_programs_and_grants_the_cap_otherwise():
    sure = _pool([1] * 8, [10] * 8)
    unsure = _pool([1, 2, 3, 4, 1, 1, 1, 1], [10] * 8)
    pol = CertaindexPolicy(detect_at=4, cap=8, entropy_threshold=0.7)
    a = run_to_completion(SelfConsistencyProgram(sure, list(range(8)), pol))
    b = run_to_completion(SelfConsistencyProgram(unsure, list(range(8)), pol))
    assert (a.knob, sum(a.tokens), a.correct) == (4, 40, True)
    assert (b.knob, sum(b.tokens), b.answer) == (8, 80, 1)
    c = run_to_completion(SelfConsistencyProgram(unsure, list(range(8)), FixedBudgetPolicy(3)))
    assert c.knob == 3 and c.answer == 1  # tie 1/2/3: first seen wins


def test_program_workload_runs_rounds_and_every_scheduler_finishes_every_program(online_setting):
    pools = [_pool([1] * 4, [6] * 4), _pool([1, 2, 1, 2], [12] * 4), _pool([2, 2, 2, 2], [9] * 4)]
    picks, arrivals = [0, 1, 2, 1, 0], [0.0, 0.001, 0.002, 0.01, 0.02]
    orders = [list(range(4))] * len(picks)
    out = {}
    for name in ("dynasor", "fcfs", "gang_fifo"):
        progs = simulate(name, pools, picks, orders, arrivals, online_setting())
        out[name] = progs
        assert all(p.finish is not None and p.finish > p.arrival for p in progs)
    # dynasor stops the certain programs after detect_at chains; baselines always run the cap
    assert [p.program.knob for p in out["dynasor"]] == [2, 4, 2, 4, 2]
    assert all(p.program.knob == 4 for p in out["fcfs"])
    tokens = {k: sum(p.tokens for p in v) for k, v in out.items()}
    assert tokens["dynasor"] < tokens["fcfs"] == tokens["gang_fifo"]
    # the uncertain program ran two rounds: its second round arrived when the first ended
    assert out["dynasor"][1].rounds == 2
    assert 0.0 <= attainment(out["dynasor"], 1.0, 0.05) <= 1.0


def test_dynasor_serves_the_shorter_program_first(online_setting):
    """SJF over programs: a long program that arrived first waits for a short one once the
    short one's chain lengths are known to be smaller (prior = observed chains)."""
    pools = [_pool([1, 2, 1, 2], [40] * 4), _pool([1, 1, 1, 1], [5] * 4)]
    setting = online_setting(max_num_seqs=2, detect_at=2, cap=4, prior_len=20.0)
    progs = simulate("dynasor", pools, [0, 1], [list(range(4))] * 2, [0.0, 0.0005], setting)
    fifo = simulate("gang_fifo", pools, [0, 1], [list(range(4))] * 2, [0.0, 0.0005], setting)
    assert progs[1].finish < fifo[1].finish


def test_certaindex_fcfs_queues_a_second_round_behind_later_programs_gang_does_not(online_setting):
    """The ablation ladder's FCFS/gang difference needs several rounds: program 0 is uncertain
    (detect 2, then 2 more chains); program 1 arrives while program 0's first round runs. Under
    request FCFS program 0's second round (arriving at 2 ms) queues behind program 1's requests
    (arrived at 1 ms); under gang FIFO it keeps its program's place and finishes first."""
    pools = [_pool([1, 2, 1, 2], [2] * 4), _pool([1, 1, 1, 1], [3] * 4)]
    setting = online_setting(max_num_seqs=2, detect_at=2, cap=4)
    args = (pools, [0, 1], [list(range(4))] * 2, [0.0, 0.0005])
    fcfs = simulate("certaindex_fcfs", *args, setting)
    gang = simulate("certaindex_gang", *args, setting)
    assert [p.program.knob for p in fcfs] == [p.program.knob for p in gang] == [4, 2]
    assert gang[0].finish < fcfs[0].finish
    # fixed-budget SC has one round: request FCFS and gang FIFO are one schedule
    a = simulate("fcfs", *args, setting)
    b = simulate("gang_fifo", *args, setting)
    assert [p.finish for p in a] == [p.finish for p in b]


def test_sustainable_rate_censoring_flags_the_grid_edges():
    from celine.experiments.dynasor.online import rate_censoring, sustainable_rate

    rates = [1.0, 2.0, 4.0]
    assert rate_censoring(rates, [1.0, 0.95, 0.92], 0.9) == "lower bound"
    assert sustainable_rate(rates, [1.0, 0.95, 0.92], 0.9) == 4.0
    assert rate_censoring(rates, [0.8, 0.7, 0.5], 0.9) == "upper bound"
    assert rate_censoring(rates, [1.0, 0.95, 0.5], 0.9) == ""
    assert sustainable_rate(rates, [1.0, 0.95, 0.5], 0.9) == pytest.approx(2.0 + 2.0 * 0.05 / 0.45)
