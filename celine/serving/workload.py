"""Workloads feed requests to the simulator, possibly in reaction to finished ones."""

from __future__ import annotations

from typing import Protocol

from celine.serving.request import Request


class Workload(Protocol):
    def initial(self) -> list[Request]: ...

    def on_finish(self, req: Request, now: float) -> list[Request]:
        """New requests (arrival >= now) issued because `req` finished at `now`."""
        ...


class StaticWorkload:
    """A fixed list of requests with their arrival times; nothing follows a finish.

    `initial()` hands out fresh copies (trace fields and `score` only), so one workload can be
    replayed under several schedulers; the filled-in requests are in `SimResult.requests`.
    """

    def __init__(self, requests: list[Request]):
        self.requests = list(requests)

    def initial(self) -> list[Request]:
        return [r.fresh() for r in self.requests]

    def on_finish(self, req: Request, now: float) -> list[Request]:
        return []
