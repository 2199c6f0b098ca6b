"""Invariants of the serving simulator: conservation, monotone time, KV capacity, the paper's
toy example, starvation control, and the workload's on_finish hook."""

from __future__ import annotations

import numpy as np
import pytest

from celine.serving import (
    FCFS,
    MLFQ,
    LatencyModel,
    OracleSJF,
    RankScheduler,
    Request,
    Simulator,
    StaticWorkload,
    poisson_arrivals,
)
from celine.serving.metrics import request_frame, summarize, time_to_n_completions

LAT = LatencyModel(c0=0.01, c_prefill=2e-5, c_decode=2e-4, c_kv=1e-7)


def random_requests(n=150, rate=40.0, seed=0):
    rng = np.random.default_rng(seed)
    arr = poisson_arrivals(rate, n, seed)
    return [
        Request(i, float(a), int(rng.integers(1, 300)), int(rng.lognormal(3.5, 1.0)) + 1)
        for i, a in enumerate(arr)
    ]


SCHEDULERS = {
    "fcfs": lambda: FCFS(),
    "oracle_sjf": lambda: OracleSJF(),
    "rank": lambda: RankScheduler(20, 3, score_fn=lambda r: r.rid % 7),
    "mlfq": lambda: MLFQ(latency=LAT),
}


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_conservation_monotone_time_and_kv_capacity(name, preemption):
    sched = SCHEDULERS[name]()
    reqs = random_requests()
    kv_cap = 3000  # tight: forces preemptions
    sim = Simulator(
        LAT,
        sched,
        max_num_seqs=16,
        max_num_batched_tokens=256,
        kv_capacity_tokens=kv_cap,
        preemption=preemption,
    )
    res = sim.run(StaticWorkload(reqs))
    by_id = {r.rid: r for r in res.requests}
    assert len(res.requests) == len(reqs) == len(by_id)  # each finishes exactly once
    for r in reqs:
        done = by_id[r.rid]
        assert done.generated == r.output_len
        assert done.finish_time >= done.first_token_time >= done.arrival
    it = res.iterations
    assert it["tokens_emitted"].sum() == sum(r.output_len for r in reqs)
    assert (np.diff(it["time"].to_numpy()) > 0).all()
    assert (it["kv_resident"] <= kv_cap).all()
    assert (it["kv_tokens"] <= kv_cap).all()
    assert (it["batch_size"] <= 16).all()
    assert (it["prefill_tokens"] + it["decode_seqs"] <= 256).all()
    assert res.makespan == pytest.approx(it["time"].iloc[-1] + it["duration"].iloc[-1])
    m = summarize(res)
    assert all(np.isfinite(v) for v in m.values())
    prefilled = it["prefill_tokens"].sum() + it["decode_seqs"].sum()
    if preemption == "swap":  # every token is computed once: nothing is recomputed
        assert prefilled == sum(r.prompt_len + r.output_len - 1 for r in reqs)
        assert (it["swapped_tokens"] > 0).any() == (it["preemptions"] > 0).any()
    else:
        assert prefilled >= sum(r.prompt_len + r.output_len - 1 for r in reqs)


def test_preemption_happens_under_kv_pressure_and_sjf_beats_fcfs():
    reqs = random_requests(n=200, rate=60.0, seed=1)
    kw = dict(max_num_seqs=16, max_num_batched_tokens=256, kv_capacity_tokens=3000)
    fcfs = Simulator(LAT, FCFS(), **kw).run(StaticWorkload(reqs))
    sjf = Simulator(LAT, OracleSJF(), **kw).run(StaticWorkload(reqs))
    assert sjf.iterations["preemptions"].sum() > 0
    assert summarize(sjf)["mean_latency_per_token"] < summarize(fcfs)["mean_latency_per_token"]


def test_a_displaced_request_keeps_its_kv_unless_preempt_descheduled():
    """One sequence slot: a short request arriving while a long one generates takes the slot
    under SJF. Parked (default), the long one resumes where it was; preempted (vLLM's running
    set), it recomputes its prompt and generated tokens, which costs prefill time."""
    lat = LatencyModel(c0=0.01, c_prefill=1e-3, c_decode=0.0, c_kv=0.0)

    def run(preempt):
        reqs = [Request(0, 0.0, 50, 40), Request(1, 0.105, 10, 3)]
        sim = Simulator(lat, OracleSJF(), max_num_seqs=1, preempt_descheduled=preempt)
        res = sim.run(StaticWorkload(reqs))
        long = next(r for r in res.requests if r.rid == 0)
        return res, long

    parked, long_parked = run(False)
    dropped, long_dropped = run(True)
    assert long_parked.preemptions == 0 and long_dropped.preemptions == 1
    assert parked.iterations["prefill_tokens"].sum() == 60  # each prompt once
    # the long request had generated some tokens when displaced: prompt + those are redone
    redone = dropped.iterations["prefill_tokens"].sum() - 60
    assert 50 < redone < 90
    assert long_dropped.finish_time == pytest.approx(long_parked.finish_time + redone * 1e-3)


def toy(sched):
    """Paper Fig. 1: R0, R1, R2 need 10, 2, 1 tokens; 1 token/s; one at a time; no prefill."""
    reqs = [Request(i, 0.0, 1, n) for i, n in enumerate([10, 2, 1])]
    sim = Simulator(LatencyModel.unit(), sched, max_num_seqs=1)
    return request_frame(sim.run(StaticWorkload(reqs))).set_index("rid")


def test_paper_toy_example_ratio():
    fcfs, sjf = toy(FCFS()), toy(OracleSJF())
    assert fcfs["latency_per_token"].tolist() == pytest.approx([1.0, 6.0, 13.0], abs=0)
    assert sjf.sort_index()["latency_per_token"].tolist() == pytest.approx([1.3, 1.5, 1.0])
    assert fcfs["latency_per_token"].mean() == pytest.approx(20 / 3)
    assert sjf["latency_per_token"].mean() == pytest.approx(3.8 / 3)
    assert fcfs["latency_per_token"].mean() / sjf["latency_per_token"].mean() == pytest.approx(
        5.263, abs=1e-3
    )
    # the learned ranker with a perfect ranking is SJF
    ranked = toy(RankScheduler(score_fn=lambda r: r.output_len))
    assert ranked["latency_per_token"].mean() == pytest.approx(3.8 / 3)


def adversarial(starvation_threshold, quantum=4, shorts=300):
    """A long request ranked behind a stream of short ones that alone saturate the server.
    It needs 5 promotions of 4 tokens; the short backlog they cause (<= 20) stays below S, so
    no short request is ever promoted ahead of it."""
    long = Request(0, 0.0, 1, 20, score=1.0)
    short = [Request(i + 1, float(i), 1, 1, score=0.0) for i in range(shorts)]
    sched = RankScheduler(starvation_threshold=starvation_threshold, priority_quantum=quantum)
    sim = Simulator(LatencyModel.unit(), sched, max_num_seqs=1)
    res = sim.run(StaticWorkload([long, *short]))
    return {r.rid: r for r in res.requests}[0], res


def test_starvation_control_bounds_the_max_wait():
    starved, _ = adversarial(None)
    assert starved.ttft >= 300  # without control it waits for the whole stream
    S, P = 25, 4
    served, res = adversarial(S, P)
    # idle S iterations -> promoted and scheduled in the next iteration: gap <= S + 1
    assert served.max_wait <= S + 1
    assert served.ttft == S + 1
    assert served.finish_time == 20 / P * (S + P)
    # promotion lasts exactly P scheduled iterations: tokens come in runs of P
    assert served.output_len % P == 0
    assert served.preemptions == 0


def test_workload_on_finish_issues_follow_up_requests():
    class Chain:
        """Each of 3 programs issues 4 sequential rounds; a round starts when the last ends."""

        def __init__(self):
            self.next_rid = 100
            self.finished_at = {}

        def initial(self):
            return [Request(p, 0.1 * p, 5, 3 + p, program=p, meta={"round": 0}) for p in range(3)]

        def on_finish(self, req, now):
            self.finished_at[req.rid] = now
            rnd = req.meta["round"] + 1
            if rnd == 4:
                return []
            self.next_rid += 1
            return [
                Request(
                    self.next_rid,
                    now,
                    5,
                    2,
                    program=req.program,
                    meta={"round": rnd, "parent": req.rid},
                )
            ]

    wl = Chain()
    res = Simulator(LAT, FCFS(), max_num_seqs=2).run(wl)
    assert len(res.requests) == 12
    for r in res.requests:
        if "parent" in r.meta:
            assert r.arrival == wl.finished_at[r.meta["parent"]]
            assert r.first_token_time > r.arrival
    assert time_to_n_completions(res, 12) == pytest.approx(res.makespan)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="kv_capacity_tokens"):
        Simulator(LAT, FCFS(), kv_capacity_tokens=10).run(StaticWorkload([Request(0, 0.0, 8, 8)]))
    with pytest.raises(ValueError, match="duplicate"):
        Simulator(LAT, FCFS()).run(StaticWorkload([Request(0, 0.0, 1, 1), Request(0, 0.0, 1, 1)]))
    with pytest.raises(ValueError, match="no score"):
        Simulator(LAT, RankScheduler()).run(StaticWorkload([Request(0, 0.0, 1, 1)]))


def test_program_metrics_and_deadline_attainment():
    from celine.serving.metrics import deadline_attainment, program_frame

    # program 0: two requests that finish at t=2 and t=3; program 1: one request finishing at 1
    reqs = [
        Request(0, 0.0, 1, 2, program=0, deadline=2.5),
        Request(1, 0.0, 1, 3, program=0, deadline=2.5),
        Request(2, 0.0, 1, 1, program=1, deadline=5.0),
    ]
    res = Simulator(LatencyModel.unit(), OracleSJF(), max_num_seqs=1).run(StaticWorkload(reqs))
    finish = {r.rid: r.finish_time for r in res.requests}
    assert finish == {2: 1.0, 0: 3.0, 1: 6.0}
    progs = program_frame(res).set_index("program")
    assert progs.loc[0, "finish"] == 6.0 and progs.loc[0, "latency"] == 6.0
    assert progs.loc[0, "requests"] == 2 and progs.loc[0, "tokens"] == 5
    assert deadline_attainment(res, per="request") == pytest.approx(1 / 3)
    assert deadline_attainment(res, per="program") == pytest.approx(1 / 2)
