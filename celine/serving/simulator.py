"""The iteration-level serving loop (continuous batching, vLLM-style).

Each iteration:
1. requests whose arrival time has come join the arrived set;
2. all arrived, unfinished requests are ordered by `scheduler.priority` (ties: arrival, rid);
3. walking that order, requests join the batch while the sequence budget
   (`max_num_seqs`), the token budget (`max_num_batched_tokens`: a decoding request costs 1
   token, a prefilling one its remaining prefill, chunked to what is left) and the KV
   capacity allow; admission stops at the first request that does not fit, so a lower
   priority request never overtakes a higher one;
4. requests outside the batch keep their KV in priority order while it fits (with
   `preempt_descheduled`, those the sequence budget left out lose it at once, as in a vLLM whose
   running set is re-sorted by priority every step); the rest, from the low-priority end, are
   preempted: "recompute" drops their KV (the prefill is redone over
   prompt + generated tokens when they run again); "swap" moves it to host memory and back
   when they run again, at `latency.c_swap` seconds per token each way (vLLM's swap space);
5. time advances by `latency.iteration_time(prefill tokens, decoding seqs, KV tokens read)`;
   every batch request whose context is now fully computed emits one token.

Trace replay: a request generates exactly `output_len` tokens (like vllm-ltr's ignore_eos).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from celine.serving.latency import LatencyModel
from celine.serving.request import Request


@dataclass
class SimResult:
    requests: list[Request]  # all requests, finished, in finishing order
    iterations: Any  # pandas.DataFrame, one row per iteration
    makespan: float  # time the last request finished
    scheduler: str = ""
    info: dict = field(default_factory=dict)


class Simulator:
    def __init__(
        self,
        latency: LatencyModel,
        scheduler,
        *,
        max_num_seqs: int = 256,
        max_num_batched_tokens: int = 2048,
        kv_capacity_tokens: int = 65536,
        preemption: str = "recompute",
        chunked_prefill: bool = True,
        preempt_descheduled: bool = False,
        max_iterations: int = 50_000_000,
    ):
        if preemption not in ("recompute", "swap"):
            raise ValueError(f"preemption={preemption!r}: expected 'recompute' or 'swap'")
        self.preemption = preemption
        for name, v in [
            ("max_num_seqs", max_num_seqs),
            ("max_num_batched_tokens", max_num_batched_tokens),
            ("kv_capacity_tokens", kv_capacity_tokens),
        ]:
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.latency = latency
        self.scheduler = scheduler
        self.max_num_seqs = int(max_num_seqs)
        self.max_num_batched_tokens = int(max_num_batched_tokens)
        self.kv_capacity_tokens = int(kv_capacity_tokens)
        self.chunked_prefill = chunked_prefill
        # vLLM keeps a running set: a request displaced from it by a higher-priority one is
        # preempted (its KV dropped or swapped), not parked with its KV as in the default here
        self.preempt_descheduled = preempt_descheduled
        self.max_iterations = max_iterations

    # -- helpers --------------------------------------------------------------------------
    def _check(self, req: Request, now: float, seen: set[int]) -> None:
        if req.rid in seen:
            raise ValueError(f"duplicate request id {req.rid}")
        if req.prompt_len < 1 or req.output_len < 1:
            raise ValueError(f"request {req.rid}: prompt_len and output_len must be >= 1")
        if req.arrival < now - 1e-9:
            raise ValueError(f"request {req.rid} arrives at {req.arrival} < now={now}")
        if req.generated or req.finish_time is not None or req.computed or req.swapped:
            raise ValueError(f"request {req.rid} was already served; pass req.fresh()")
        if req.prompt_len + req.output_len > self.kv_capacity_tokens:
            raise ValueError(
                f"request {req.rid} needs {req.prompt_len + req.output_len} KV tokens "
                f"> kv_capacity_tokens={self.kv_capacity_tokens}"
            )
        if (
            not self.chunked_prefill
            and req.prompt_len + req.output_len > self.max_num_batched_tokens
        ):
            raise ValueError(
                f"request {req.rid} cannot be prefilled in one iteration without chunked prefill"
            )
        seen.add(req.rid)

    # -- main loop ------------------------------------------------------------------------
    def run(self, workload) -> SimResult:
        import pandas as pd

        sched = self.scheduler
        on_arrival = getattr(sched, "on_arrival", None)
        on_iteration = getattr(sched, "on_iteration", None)
        on_finish = getattr(sched, "on_finish", None)
        priority = sched.priority

        seen: set[int] = set()
        pending: list[tuple[float, int, Request]] = []
        for req in workload.initial():
            self._check(req, 0.0 if req.arrival >= 0 else req.arrival, seen)
            heapq.heappush(pending, (req.arrival, req.rid, req))

        active: list[Request] = []
        finished: list[Request] = []
        rows: list[tuple] = []
        now = 0.0 if not pending else min(0.0, pending[0][0])
        it = 0
        while pending or active:
            while pending and pending[0][0] <= now:
                req = heapq.heappop(pending)[2]
                active.append(req)
                if on_arrival:
                    on_arrival(req)
            if not active:
                now = pending[0][0]
                continue
            if it >= self.max_iterations:
                raise RuntimeError(f"simulation exceeded max_iterations={self.max_iterations}")

            order = sorted(active, key=lambda r: (priority(r, now, it), r.arrival, r.rid))

            # admission in priority order
            tokens_left = self.max_num_batched_tokens
            seqs_left = self.max_num_seqs
            kv_left = self.kv_capacity_tokens
            batch: list[tuple[Request, int]] = []
            stop = 0
            swap_in = swap_out = 0
            seqs_full = False
            for r in order:
                if seqs_left == 0 or tokens_left == 0:
                    seqs_full = seqs_left == 0
                    break
                base = r.computed or r.swapped  # swapped-out KV comes back, not recomputed
                need = r.context_len - base
                if need > tokens_left:
                    if not self.chunked_prefill:
                        break
                    need = tokens_left
                kv_after = base + need
                if kv_after > kv_left:
                    break
                if r.swapped:
                    swap_in += r.swapped
                    r.computed, r.swapped = r.swapped, 0
                batch.append((r, need))
                kv_left -= kv_after
                tokens_left -= need
                seqs_left -= 1
                stop += 1

            # KV of requests outside the batch: keep by priority, preempt from the low end
            preempted = 0
            displaced = self.preempt_descheduled and seqs_full
            for r in order[stop:]:
                if r.computed == 0:
                    continue
                if r.computed <= kv_left and not displaced:
                    kv_left -= r.computed
                else:
                    if self.preemption == "swap":
                        r.swapped = r.computed
                        swap_out += r.computed
                    r.computed = 0
                    r.preemptions += 1
                    preempted += 1

            prefill_tokens = 0
            decode_seqs = 0
            kv_read = 0
            for r, n in batch:
                if n == 1 and r.computed > 0 and r.generated > 0:
                    decode_seqs += 1
                else:
                    prefill_tokens += n
                kv_read += r.computed + n
            dt = self.latency.iteration_time(prefill_tokens, decode_seqs, kv_read)
            if swap_in or swap_out:
                dt += getattr(self.latency, "c_swap", 0.0) * (swap_in + swap_out)
            if not dt > 0:
                raise ValueError(f"latency model gave a non-positive iteration time {dt}")
            start = now
            now = now + dt

            done: list[Request] = []
            running = []
            emitted = 0
            for r, n in batch:
                r.computed += n
                r.service_time += dt
                r.last_scheduled = now
                r.scheduled_iterations += 1
                r.waited_iterations = 0
                running.append(r)
                if r.computed == r.context_len:  # context complete: emit one token
                    r.generated += 1
                    emitted += 1
                    gap = now - (r.last_token_time if r.last_token_time is not None else r.arrival)
                    if gap > r.max_gap:
                        r.max_gap = gap
                    if r.first_token_time is None:
                        r.first_token_time = now
                    r.last_token_time = now
                    if r.generated == r.output_len:
                        r.finish_time = now
                        r.computed = r.swapped = 0  # KV released
                        done.append(r)
            in_batch = {id(r) for r in running}
            waiting = [r for r in order[stop:] if id(r) not in in_batch]
            for r in waiting:
                r.waited_iterations += 1
            kv_resident = sum(r.computed for r in active)
            rows.append(
                (
                    it,
                    start,
                    dt,
                    len(batch),
                    prefill_tokens,
                    decode_seqs,
                    kv_read,
                    kv_resident,
                    emitted,
                    preempted,
                    swap_in + swap_out,
                    len(waiting),
                )
            )
            if on_iteration:
                on_iteration(running, waiting, it)
            if done:
                done_ids = {id(r) for r in done}
                active = [r for r in active if id(r) not in done_ids]
                for r in done:
                    finished.append(r)
                    if on_finish:
                        on_finish(r, now)
                    for new in workload.on_finish(r, now) or []:
                        self._check(new, now, seen)
                        heapq.heappush(pending, (new.arrival, new.rid, new))
            it += 1

        iterations = pd.DataFrame(
            rows,
            columns=[
                "iteration",
                "time",
                "duration",
                "batch_size",
                "prefill_tokens",
                "decode_seqs",
                "kv_tokens",
                "kv_resident",
                "tokens_emitted",
                "preemptions",
                "swapped_tokens",
                "waiting",
            ],
        )
        makespan = max((r.finish_time for r in finished), default=0.0)
        return SimResult(
            finished, iterations, makespan, getattr(sched, "name", type(sched).__name__)
        )
