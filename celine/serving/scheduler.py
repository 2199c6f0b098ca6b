"""Scheduling policies: each orders all arrived, unfinished requests every iteration.

`priority(req, now, iteration)` returns a key; lower runs first. The simulator breaks ties
by (arrival, rid). Optional hooks: `on_arrival(req)`, `on_iteration(running, waiting,
iteration)` (after each iteration: `running` are the requests that ran in it, `waiting`
the arrived unfinished ones that did not) and `on_finish(req, now)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from celine.serving.request import Request


@runtime_checkable
class Scheduler(Protocol):
    name: str

    def priority(self, req: Request, now: float, iteration: int) -> tuple | float: ...


class FCFS:
    """First come, first served (vLLM's default): earlier arrivals run and keep running."""

    name = "fcfs"

    def priority(self, req: Request, now: float, iteration: int) -> float:
        return req.arrival


class OracleSJF:
    """Oracle shortest-job-first on the true lengths, re-sorted every iteration.

    `remaining=True` (default) orders by remaining output tokens (SRTF, the lower bound on
    mean latency the paper compares against); `remaining=False` by total output length.
    """

    name = "oracle_sjf"

    def __init__(self, remaining: bool = True):
        self.remaining = remaining

    def priority(self, req: Request, now: float, iteration: int) -> float:
        return req.output_len - req.generated if self.remaining else req.output_len


class RankScheduler:
    """vllm-ltr's scheduler: order by predicted rank, with starvation promotion.

    `req.score` is the rank key, lower = predicted shorter (set it from the predictor before
    the request arrives, or pass `score_fn(req) -> float`, called on arrival). A request idle
    (not scheduled) for `starvation_threshold` consecutive iterations is promoted ahead of all
    unpromoted ones for its next `priority_quantum` scheduled iterations, then demoted.
    `starvation_threshold=None` disables starvation control.
    """

    name = "rank"

    def __init__(
        self,
        starvation_threshold: int | None = 200,
        priority_quantum: int = 10,
        score_fn: Callable[[Request], float] | None = None,
    ):
        if starvation_threshold is not None and starvation_threshold < 1:
            raise ValueError(
                f"starvation_threshold must be >= 1 or None, got {starvation_threshold}"
            )
        if priority_quantum < 1:
            raise ValueError(f"priority_quantum must be >= 1, got {priority_quantum}")
        self.starvation_threshold = starvation_threshold
        self.priority_quantum = priority_quantum
        self.score_fn = score_fn
        self.promoted: dict[int, int] = {}  # rid -> scheduled iterations of promotion left
        self.promotions = 0

    def on_arrival(self, req: Request) -> None:
        if req.score is None and self.score_fn is not None:
            req.score = float(self.score_fn(req))

    def priority(self, req: Request, now: float, iteration: int) -> tuple:
        if req.score is None:
            raise ValueError(f"RankScheduler: request {req.rid} has no score (set req.score)")
        return (0 if req.rid in self.promoted else 1, req.score)

    def on_iteration(self, running, waiting, iteration: int) -> None:
        for r in running:
            left = self.promoted.get(r.rid)
            if left is not None:
                if left <= 1:
                    del self.promoted[r.rid]
                else:
                    self.promoted[r.rid] = left - 1
        if self.starvation_threshold is None:
            return
        for r in waiting:
            if r.waited_iterations >= self.starvation_threshold and r.rid not in self.promoted:
                self.promoted[r.rid] = self.priority_quantum
                self.promotions += 1

    def on_finish(self, req: Request, now: float) -> None:
        self.promoted.pop(req.rid, None)


class MLFQ:
    """FastServe-like multi-level feedback queue (vllm-ltr's MLFQ baseline).

    Level p has quantum `base_quantum * threshold**p` seconds of service; a request that uses
    up its level's quantum is demoted. Skip-join: given a latency model, a new request enters
    at the first level whose quantum covers its prefill time. Every `starvation_period`
    iterations, requests not served for `starvation_time` seconds return to level 0. Within a
    level: first come, first served.
    """

    name = "mlfq"

    def __init__(
        self,
        base_quantum: float = 0.01,
        threshold: float = 2.0,
        num_levels: int = 16,
        starvation_time: float = 3.0,
        starvation_period: int = 100,
        latency=None,
    ):
        if base_quantum <= 0 or threshold < 1 or num_levels < 1:
            raise ValueError("MLFQ needs base_quantum > 0, threshold >= 1, num_levels >= 1")
        self.base_quantum = base_quantum
        self.threshold = threshold
        self.num_levels = num_levels
        self.starvation_time = starvation_time
        self.starvation_period = starvation_period
        self.latency = latency
        self.level: dict[int, int] = {}
        self.used: dict[int, float] = {}  # service time at the current level
        self.seen: dict[int, float] = {}  # req.service_time at the last update

    def quantum(self, level: int) -> float:
        return self.base_quantum * self.threshold**level

    def on_arrival(self, req: Request) -> None:
        level = 0
        if self.latency is not None:
            t = self.latency.iteration_time(req.prompt_len, 0, req.prompt_len)
            while level < self.num_levels - 1 and self.quantum(level) < t:
                level += 1
        self.level[req.rid] = level
        self.used[req.rid] = 0.0
        self.seen[req.rid] = req.service_time

    def priority(self, req: Request, now: float, iteration: int) -> tuple:
        if req.rid not in self.level:
            self.on_arrival(req)
        return (self.level[req.rid], req.arrival)

    def on_iteration(self, running, waiting, iteration: int) -> None:
        for r in running:
            self.used[r.rid] += r.service_time - self.seen[r.rid]
            self.seen[r.rid] = r.service_time
            lv = self.level[r.rid]
            if self.used[r.rid] >= self.quantum(lv) and lv < self.num_levels - 1:
                self.level[r.rid] = lv + 1
                self.used[r.rid] = 0.0
        if self.starvation_period and iteration % self.starvation_period == 0 and running:
            now = max(r.last_scheduled for r in running)
            for r in waiting:
                since = r.last_scheduled if r.last_scheduled is not None else r.arrival
                if now - since >= self.starvation_time:
                    self.level[r.rid] = 0
                    self.used[r.rid] = 0.0

    def on_finish(self, req: Request, now: float) -> None:
        for d in (self.level, self.used, self.seen):
            d.pop(req.rid, None)
