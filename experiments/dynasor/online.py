"""Online mode: reasoning programs arrive over time and share one serving engine (paper §4.2,
App. D). Runs in the shared discrete-event simulator `celine.serving`.

A `ProgramWorkload` turns reasoning programs recorded from the real model into requests round
by round: a round grants units (SC: chains, tree search: whole searches), the granted units run
side by side, and when the last one finishes the program reads them, updates certaindex and asks
the policy for the next round. A unit is a chain of dependent request stages (`unit_stages`): an
SC chain is one request; a tree search is one stage per expansion round of the recorded search
(one request per expanded node, its prompt the problem's plus the parent's chain), and a stage is
issued only when the stage before it of the same search has finished. So an SC program has at
most two rounds of requests, a tree program as many as its searches are deep.

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


def unit_stages(pool, unit: int) -> list[list[tuple[int, int]]]:
    """The dependent request stages of one unit, each a list of (prompt_len, output_len).
    SC chain: one stage of one request. Tree search: its recorded expansion rounds (a node's
    prompt is the problem's plus its parent's chain, so without a prefix cache the engine
    prefills it again; the generated tokens sum to the search's recorded `tokens`)."""
    trees = getattr(pool, "trees", None)
    if trees is None:
        return [[(pool.prompt_len, max(1, pool.tokens[unit]))]]
    tree = trees[unit]
    if not tree.steps:
        raise ValueError(
            "tree pool without per-round requests (an older cache format): delete it and rerun"
        )
    return [[(pool.prompt_len + prefix, out) for prefix, out in stage] for stage in tree.steps]


def unit_tokens(pool) -> list[int]:
    """Generated tokens of every unit of a pool (chains, or whole searches)."""
    trees = getattr(pool, "trees", None)
    return list(pool.tokens) if trees is None else [t.tokens for t in trees]


def mean_decode_context(pools) -> float:
    """Mean context (KV tokens read) of a decoding step. SC: the prompt plus half a chain;
    tree search: each step request's prompt (problem + parent chain) plus half its step,
    weighted by the tokens it generates."""
    if getattr(pools[0], "trees", None) is None:
        prompt = float(np.mean([p.prompt_len for p in pools]))
        return prompt + float(np.mean([t for p in pools for t in p.tokens])) / 2
    num = den = 0.0
    for p in pools:
        for u in range(p.units):
            for stage in unit_stages(p, u):
                for prompt_len, out in stage:
                    num += out * (prompt_len + out / 2)
                    den += out
    return num / den


def difficulty_factor(pool: ProblemPool) -> int:
    """Paper App. F.3: 1 if always solved, 3 if never, 2 otherwise (from the recorded chains)."""
    correct = pool.correct
    return 1 if all(correct) else 3 if not any(correct) else 2


def deadline(arrival: float, slo_scale: float, factor: int, base: float) -> float:
    """Absolute deadline: arrival + SLO_scale x difficulty_factor x base_deadline."""
    return arrival + slo_scale * factor * base


@dataclass
class UnitRun:
    """A granted unit on its way through its request stages."""

    unit: int
    stages: list[list[tuple[int, int]]]
    stage: int = 0  # the stage whose requests are outstanding
    done_tokens: int = 0  # tokens of its finished requests
    outstanding: set[int] = field(default_factory=set)  # rids of the current stage


@dataclass
class ProgramState:
    pid: int
    arrival: float
    program: SelfConsistencyProgram
    factor: int
    outstanding: dict[int, tuple[int, object]] = field(default_factory=dict)  # rid -> (unit, req)
    running: dict[int, UnitRun] = field(default_factory=dict)  # units of this round, by unit
    round_done: list[int] = field(default_factory=list)  # units finished in this round
    rounds: int = 0  # policy rounds (grants)
    serial_rounds: int = 0  # request stages one after the other (a round: its deepest unit)
    finish: float | None = None
    decided: bool = False  # certaindex has been read (the first round is over)

    @property
    def tokens(self) -> int:
        return sum(self.program.tokens)


class ProgramWorkload:
    """Programs as a simulator workload (`initial()`, `on_finish()`), replayable: `initial()`
    rebuilds every program from its trace. `program` is the program class (self-consistency,
    or `TreeSearchProgram` over tree pools). Every issued request is kept in `issued`."""

    def __init__(
        self,
        pools: Sequence[ProblemPool],
        picks: Sequence[int],
        orders: Sequence[list[int]],
        arrivals: Sequence[float],
        make_policy,
        program=SelfConsistencyProgram,
    ) -> None:
        self.pools, self.picks, self.orders = pools, list(picks), list(orders)
        self.arrivals, self.make_policy, self.program = list(arrivals), make_policy, program
        self.programs: list[ProgramState] = []
        self.by_rid: dict[int, ProgramState] = {}
        self.issued: list = []
        self.units_done, self.unit_tokens_done = 0, 0  # finished units so far (SJF's prior)
        self._next_rid = 0

    def _stage_requests(self, st: ProgramState, run: UnitRun, now: float):
        from celine.serving.request import Request

        out = []
        for prompt_len, output_len in run.stages[run.stage]:
            rid = self._next_rid
            self._next_rid += 1
            req = Request(
                rid=rid,
                arrival=now,
                prompt_len=prompt_len,
                output_len=output_len,
                program=st.pid,
                meta={"round": st.rounds - 1, "unit": run.unit, "stage": run.stage},
            )
            st.outstanding[rid] = (run.unit, req)
            run.outstanding.add(rid)
            self.by_rid[rid] = st
            out.append(req)
        self.issued.extend(out)
        return out

    def _requests(self, st: ProgramState, now: float):
        units = st.program.request()
        st.rounds += bool(units)
        out = []
        for u in units:
            run = UnitRun(u, unit_stages(st.program.pool, u))
            st.running[u] = run
            out.extend(self._stage_requests(st, run, now))
        st.serial_rounds += max((len(st.running[u].stages) for u in units), default=0)
        return out

    def initial(self):
        self.programs, self.by_rid, self.issued, self._next_rid = [], {}, [], 0
        self.units_done, self.unit_tokens_done = 0, 0
        reqs = []
        for pid, (k, order, t) in enumerate(
            zip(self.picks, self.orders, self.arrivals, strict=True)
        ):
            pool = self.pools[k]
            prog = self.program(pool, list(order), self.make_policy())
            st = ProgramState(pid, float(t), prog, difficulty_factor(pool))
            self.programs.append(st)
            reqs.extend(self._requests(st, float(t)))
        return reqs

    def on_finish(self, req, now: float):
        st = self.by_rid.pop(req.rid)
        unit = st.outstanding.pop(req.rid)[0]
        run = st.running[unit]
        run.outstanding.discard(req.rid)
        run.done_tokens += req.output_len
        if run.outstanding:
            return []
        run.stage += 1
        if run.stage < len(run.stages):  # the unit's next stage depends on this one
            return self._stage_requests(st, run, now)
        del st.running[unit]
        st.round_done.append(unit)
        self.units_done += 1
        self.unit_tokens_done += run.done_tokens
        if st.running:
            return []
        # the round's units in grant order (the order the program drew them)
        granted = st.program.order[st.program.knob - len(st.round_done) : st.program.knob]
        st.program.complete(granted)
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

    Remaining work of a program = for each running unit (chain or search), max(1, mean unit
    length - tokens it generated so far) + the units it may still be granted x mean unit length,
    where "may" is the probability (from calibration) that certaindex does not stop it at
    detection. Mean unit length: the program's own finished units, else the running mean of all
    finished units (the paper: average tokens per iteration from earlier iterations)."""

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
        self.prior_len = prior_len  # counts as one finished unit in the running mean
        self.escalations = 0
        self._escalated: set[int] = set()
        self._cache: dict[int, tuple[int, float]] = {}

    def remaining_work(self, st: ProgramState) -> float:
        prog, wl = st.program, self.workload
        own = prog.tokens
        if own:
            mean = sum(own) / len(own)
        else:
            mean = (self.prior_len + wl.unit_tokens_done) / (1 + wl.units_done)
        running = 0.0
        for run in st.running.values():
            so_far = run.done_tokens + sum(st.outstanding[r][1].generated for r in run.outstanding)
            running += max(1.0, mean - so_far)
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
    program=SelfConsistencyProgram,
    log: list | None = None,
) -> list[ProgramState]:
    """Run one arrival trace under one scheduler; returns the finished programs. `program`:
    the program class of the pools (`TreeSearchProgram` for tree pools); `log`, if given,
    receives every request issued (with its arrival and finish time)."""
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
    workload = ProgramWorkload(pools, picks, orders, arrivals, make_policy, program)
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
    if log is not None:
        log.extend(workload.issued)
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
                "units": p.program.knob,
                "serial_rounds": p.serial_rounds,
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


def isolated_latency(
    pool: ProblemPool, setting: OnlineSetting, cap: int, program=SelfConsistencyProgram
) -> float:
    """Latency of one fixed-budget program alone on the engine."""
    progs = simulate(
        "gang_fifo",
        [pool],
        [0],
        [list(range(pool.units))],
        [0.0],
        OnlineSetting(**{**setting.__dict__, "cap": cap}),
        program,
    )
    return progs[0].finish


def mean_or_nan(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else math.nan
