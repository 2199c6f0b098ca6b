"""Online mode: reasoning programs arrive over time and share one serving engine (paper §4.2,
App. D). Runs in the shared discrete-event simulator `celine.serving`.

A `ProgramWorkload` turns Self-consistency programs (chains recorded from the real model) into
requests round by round: a round's requests arrive together, and when the last one finishes
the program reads its chains, updates certaindex and asks the policy for the next round.

Schedulers (priority keys, lower runs first), the ablation ladder of the README's online table,
each row adding one mechanism to the row before it:
- `fcfs`: SGLang-like, request by request in arrival order (programs interleave), fixed budget;
- `gang_fifo`: Parrot-like application FIFO: a program's requests run together, programs in
  arrival order, fixed budget;
- `certaindex_fcfs`: certaindex stopping (two rounds: detect, then the rest) under request FCFS,
  so a program's second round queues behind programs that arrived meanwhile;
- `certaindex_gang`: certaindex stopping under gang FIFO (a later round keeps its program's place);
- `dynasor`: certaindex + gang + approximate shortest-job-first over programs on the
  certaindex-predicted remaining work + starvation escalation (programs older than
  `starvation_s` go first).
- `gang_sjf` (off by default): Dynasor's scheduler on fixed-budget programs.
With a one-round fixed-budget SC program, `fcfs` and `gang_fifo` are the same schedule (all of a
program's requests share one arrival time); they differ only once programs have several rounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from celine.experiments.dynasor.pool import ProblemPool
from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    FixedBudgetPolicy,
    SelfConsistencyProgram,
)


def difficulty_factor(pool: ProblemPool) -> int:
    """Paper App. F.3: 1 if always solved, 3 if never, 2 otherwise (from the recorded chains)."""
    correct = pool.correct
    return 1 if all(correct) else 3 if not any(correct) else 2


def deadline(arrival: float, slo_scale: float, factor: int, base: float) -> float:
    """Absolute deadline: arrival + SLO_scale x difficulty_factor x base_deadline."""
    return arrival + slo_scale * factor * base


@dataclass
class ProgramState:
    pid: int
    arrival: float
    program: SelfConsistencyProgram
    factor: int
    outstanding: dict[int, tuple[int, object]] = field(default_factory=dict)  # rid -> (chain, req)
    round_done: list[int] = field(default_factory=list)  # chains finished in this round
    rounds: int = 0
    finish: float | None = None
    decided: bool = False  # certaindex has been read (the first round is over)

    @property
    def tokens(self) -> int:
        return sum(self.program.tokens)


class ProgramWorkload:
    """Programs as a simulator workload (`initial()`, `on_finish()`), replayable: `initial()`
    rebuilds every program from its trace."""

    def __init__(
        self,
        pools: Sequence[ProblemPool],
        picks: Sequence[int],
        orders: Sequence[list[int]],
        arrivals: Sequence[float],
        make_policy,
    ) -> None:
        self.pools, self.picks, self.orders = pools, list(picks), list(orders)
        self.arrivals, self.make_policy = list(arrivals), make_policy
        self.programs: list[ProgramState] = []
        self.by_rid: dict[int, ProgramState] = {}
        self._next_rid = 0

    def _requests(self, st: ProgramState, now: float):
        from celine.serving.request import Request

        chains = st.program.request()
        out = []
        for c in chains:
            rid = self._next_rid
            self._next_rid += 1
            pool = st.program.pool
            req = Request(
                rid=rid,
                arrival=now,
                prompt_len=pool.prompt_len,
                output_len=max(1, pool.tokens[c]),
                program=st.pid,
                meta={"round": st.rounds},
            )
            st.outstanding[rid] = (c, req)
            self.by_rid[rid] = st
            out.append(req)
        st.rounds += bool(chains)
        return out

    def initial(self):
        self.programs, self.by_rid, self._next_rid = [], {}, 0
        reqs = []
        for pid, (k, order, t) in enumerate(
            zip(self.picks, self.orders, self.arrivals, strict=True)
        ):
            pool = self.pools[k]
            prog = SelfConsistencyProgram(pool, list(order), self.make_policy())
            st = ProgramState(pid, float(t), prog, difficulty_factor(pool))
            self.programs.append(st)
            reqs.extend(self._requests(st, float(t)))
        return reqs

    def on_finish(self, req, now: float):
        st = self.by_rid.pop(req.rid)
        st.round_done.append(st.outstanding.pop(req.rid)[0])
        if st.outstanding:
            return []
        st.program.complete(st.round_done)
        st.round_done = []
        st.decided = True
        new = self._requests(st, now)
        if not new:
            st.finish = now
        return new


class GangFIFO:
    """Parrot-like: programs in the order they first arrived, a program's requests together
    (later rounds keep the program's place)."""

    name = "gang_fifo"

    def __init__(self) -> None:
        self.first: dict[int, float] = {}

    def on_arrival(self, req) -> None:
        self.first.setdefault(req.program, req.arrival)

    def priority(self, req, now: float, iteration: int) -> tuple:
        return (self.first.get(req.program, req.arrival), req.program)


class DynasorScheduler:
    """Gang scheduling + approximate SJF over programs on certaindex-predicted remaining work
    + starvation escalation.

    Remaining work of a program = its unfinished granted chains x (mean chain length - tokens
    already generated) + the chains it may still be granted x mean chain length, where "may"
    is the probability (from calibration) that certaindex does not stop it at detection.
    Mean chain length: the program's own finished chains, else the running mean of all
    finished chains (the paper: average tokens per iteration from earlier iterations)."""

    name = "dynasor"

    def __init__(
        self,
        workload: ProgramWorkload,
        cap: int,
        continue_prob: float,
        starvation_s: float,
        prior_len: float,
    ) -> None:
        self.workload, self.cap = workload, cap
        self.continue_prob, self.starvation_s = continue_prob, starvation_s
        self.sum_len, self.n_len = prior_len, 1  # running mean of finished chain lengths
        self.escalations = 0
        self._escalated: set[int] = set()
        self._cache: dict[int, tuple[int, float]] = {}

    def on_finish(self, req, now: float) -> None:
        self.sum_len += req.output_len
        self.n_len += 1

    def remaining_work(self, st: ProgramState) -> float:
        prog = st.program
        own = prog.tokens
        mean = (sum(own) / len(own)) if own else self.sum_len / self.n_len
        running = sum(max(1.0, mean - r.generated) for _, r in st.outstanding.values())
        future = 0.0 if st.decided else self.continue_prob * (self.cap - prog.knob) * mean
        return running + future

    def priority(self, req, now: float, iteration: int) -> tuple:
        st = self.workload.programs[req.program]
        starving = now - st.arrival > self.starvation_s
        if starving and st.pid not in self._escalated:
            self._escalated.add(st.pid)
            self.escalations += 1
        key = self._cache.get(st.pid)
        if key is None or key[0] != iteration:  # once per program and iteration
            key = (iteration, self.remaining_work(st))
            self._cache[st.pid] = key
        # starving programs first (oldest first), then shortest predicted remaining work
        return (0, st.arrival, 0.0, st.pid) if starving else (1, key[1], st.arrival, st.pid)


class FCFSRequests:
    """SGLang-like: request-level first come first served (programs interleave)."""

    name = "fcfs"

    def priority(self, req, now: float, iteration: int) -> float:
        return req.arrival


@dataclass
class OnlineSetting:
    latency: object
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_capacity_tokens: int
    detect_at: int
    cap: int
    threshold: float
    continue_prob: float
    base_deadline: float
    starvation_s: float
    prior_len: float


# scheduler -> (uses certaindex, queue discipline)
SCHEDULERS = {
    "fcfs": (False, "fcfs"),
    "gang_fifo": (False, "gang"),
    "certaindex_fcfs": (True, "fcfs"),
    "certaindex_gang": (True, "gang"),
    "dynasor": (True, "sjf"),
    "gang_sjf": (False, "sjf"),
}
SCHEDULER_NAMES = tuple(SCHEDULERS)


def simulate(
    scheduler: str,
    pools: Sequence[ProblemPool],
    picks,
    orders,
    arrivals,
    setting: OnlineSetting,
) -> list[ProgramState]:
    """Run one arrival trace under one scheduler; returns the finished programs."""
    from celine.serving.simulator import Simulator

    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler={scheduler!r}: allowed {', '.join(SCHEDULERS)}")
    uses_certaindex, queue = SCHEDULERS[scheduler]
    if uses_certaindex:
        make_policy = lambda: CertaindexPolicy(  # noqa: E731
            setting.detect_at, setting.cap, entropy_threshold=setting.threshold
        )
    else:
        make_policy = lambda: FixedBudgetPolicy(setting.cap)  # noqa: E731
    workload = ProgramWorkload(pools, picks, orders, arrivals, make_policy)
    if queue == "sjf":
        # on fixed-budget programs (gang_sjf) nothing is left to decide after the first round,
        # the ablation that separates scheduling from certaindex's token savings
        sched = DynasorScheduler(
            workload,
            setting.cap,
            setting.continue_prob if uses_certaindex else 0.0,
            setting.starvation_s,
            setting.prior_len,
        )
    elif queue == "gang":
        sched = GangFIFO()
    else:
        sched = FCFSRequests()
    sched.name = scheduler
    sim = Simulator(
        setting.latency,
        sched,
        max_num_seqs=setting.max_num_seqs,
        max_num_batched_tokens=setting.max_num_batched_tokens,
        kv_capacity_tokens=setting.kv_capacity_tokens,
    )
    sim.run(workload)
    unfinished = [p.pid for p in workload.programs if p.finish is None]
    if unfinished:
        raise RuntimeError(f"programs {unfinished[:5]} never finished")
    return workload.programs


def attainment(programs: Sequence[ProgramState], slo_scale: float, base: float) -> float:
    """Fraction of programs finished by their deadline."""
    met = [p.finish <= deadline(p.arrival, slo_scale, p.factor, base) + 1e-12 for p in programs]
    return float(np.mean(met))


def program_table(programs: Sequence[ProgramState]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "program": p.pid,
                "arrival": p.arrival,
                "finish": p.finish,
                "latency": p.finish - p.arrival,
                "factor": p.factor,
                "chains": p.program.knob,
                "tokens": p.tokens,
                "correct": p.program.correct,
            }
            for p in programs
        ]
    )


def sustainable_rate(rates: Sequence[float], attain: Sequence[float], target: float) -> float:
    """The highest rate at which attainment is still >= target, interpolating linearly to the
    first crossing below it; 0 if even the lowest rate misses, the top rate if none does (then
    it is censored: see `rate_censoring`)."""
    pts = sorted(zip(rates, attain, strict=True))
    if not pts or pts[0][1] < target:
        return 0.0
    for (r0, a0), (r1, a1) in zip(pts, pts[1:], strict=False):
        if a1 < target:
            return r0 + (r1 - r0) * (a0 - target) / (a0 - a1) if a0 != a1 else r0
    return pts[-1][0]


def rate_censoring(rates: Sequence[float], attain: Sequence[float], target: float) -> str:
    """ "lower bound" when even the top rate of the grid meets the target (the true sustainable
    rate is higher than reported), "upper bound" when even the lowest misses, else ""."""
    pts = sorted(zip(rates, attain, strict=True))
    if not pts:
        return ""
    if pts[0][1] < target:
        return "upper bound"
    if all(a >= target for _, a in pts):
        return "lower bound"
    return ""


def isolated_latency(pool: ProblemPool, setting: OnlineSetting, cap: int) -> float:
    """Latency of one fixed-budget program alone on the engine."""
    progs = simulate(
        "gang_fifo",
        [pool],
        [0],
        [list(range(len(pool.answers)))],
        [0.0],
        OnlineSetting(**{**setting.__dict__, "cap": cap}),
    )
    return progs[0].finish


def mean_or_nan(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else math.nan
