"""vllm-ltr's scheduling inside a stock vLLM, as a `scheduler_cls` (no patch to vLLM).

The engine runs with `SchedulerConfig.policy="priority"`; each request's `priority` (lower runs
first) carries its rank key. vLLM's own priority scheduler never takes a running request off for
a better-ranked waiting one (it preempts only when the KV cache runs out), whereas vllm-ltr
re-sorts every request every iteration and runs the best `max_num_seqs`. This subclass adds that
before each `schedule()`:

1. every request's effective priority is refreshed: its base priority, minus its generated
   tokens when it asked for shortest-*remaining* order (oracle SRTF), and far ahead of everyone
   while promoted by the starvation rule;
2. the waiting queue is rebuilt on the refreshed keys (a heap does not re-sort by itself);
3. while the running set is full and the best waiting request outranks the worst running one,
   the worst running one is preempted (vLLM's recompute preemption: its KV is freed).

Starvation prevention (vllm-ltr): a request not scheduled for `starvation_threshold`
consecutive iterations is promoted for its next `priority_quantum` scheduled iterations. The
settings travel per request in `SamplingParams.extra_args["celine"]`, so one engine serves
schedulers with and without the rule. With equal base priorities the order is vLLM's (priority,
arrival time), i.e. first come, first served, and nothing is ever preempted for rank.

Every step is logged (one JSON line, to the file named by `CELINE_VLLM_STEP_LOG`) with the
engine's own monotonic timestamps: the batch's features (prefill tokens, decoding sequences, KV
tokens read), the requests that emitted a token and those that finished. Latency metrics and the
simulator's calibration are computed from this log, not from the client's clock.
"""

from __future__ import annotations

import json
import os
import time

from vllm.v1.core.sched.request_queue import create_request_queue
from vllm.v1.core.sched.scheduler import Scheduler

STEP_LOG_ENV = "CELINE_VLLM_STEP_LOG"
PROMOTED = -(1 << 40)  # added to a promoted request's key: ahead of every unpromoted one


class CelineScheduler(Scheduler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._celine: dict[str, dict] = {}  # request id -> base key, rule settings, counters
        path = os.environ.get(STEP_LOG_ENV)
        self._step_log = open(path, "a", buffering=1) if path else None  # noqa: SIM115
        self._step = 0
        self._sched_start = self._sched_end = 0.0
        self._pending_row: dict | None = None

    # -- requests ----------------------------------------------------------------------------
    def add_request(self, request) -> None:
        params = request.sampling_params
        extra = ((params.extra_args or {}) if params is not None else {}).get("celine", {})
        threshold = extra.get("starvation_threshold")
        self._celine[request.request_id] = dict(
            base=int(request.priority),
            remaining=bool(extra.get("remaining", False)),
            threshold=int(threshold) if threshold else None,
            quantum=int(extra.get("priority_quantum", 10)),
            idle=0,
            promoted_left=0,
        )
        self._refresh(request)
        super().add_request(request)

    def _refresh(self, request) -> None:
        state = self._celine.get(request.request_id)
        if state is None:
            return
        key = state["base"]
        if state["remaining"]:
            key -= request.num_output_tokens
        if state["promoted_left"] > 0:
            key += PROMOTED
        request.priority = key

    @staticmethod
    def _rank(request) -> tuple:
        return (request.priority, request.arrival_time)

    # -- the vllm-ltr step -------------------------------------------------------------------
    def _resort_and_preempt(self) -> int:
        for r in self.running:
            self._refresh(r)
        waiting = list(self.waiting)
        for r in waiting:
            self._refresh(r)
        if waiting:
            queue = create_request_queue(self.policy)
            for r in waiting:
                queue.add_request(r)
            self.waiting = queue
        preempted = 0
        limit = getattr(self, "max_num_active_reqs", self.max_num_running_reqs)
        while self.running and len(self.running) >= limit and self.waiting:
            best = self.waiting.peek_request()
            worst = max(self.running, key=self._rank)
            if self._rank(best) >= self._rank(worst):
                break
            self.running.remove(worst)
            self._preempt_request(worst, time.monotonic())
            preempted += 1
        return preempted

    def schedule(self, *args, **kwargs):
        start = time.monotonic()
        preempted = self._resort_and_preempt() if self._celine else 0
        out = super().schedule(*args, **kwargs)
        end = time.monotonic()

        scheduled = out.num_scheduled_tokens
        prefill_tokens = decode_seqs = kv_tokens = 0
        for rid, n in scheduled.items():
            req = self.requests.get(rid)
            if req is None:
                continue
            before = req.num_computed_tokens - n  # schedule() already advanced it
            if n == 1 and before >= req.num_prompt_tokens:
                decode_seqs += 1
            else:
                prefill_tokens += n
            kv_tokens += req.num_computed_tokens
        promoted = []
        for rid, state in self._celine.items():
            if rid in scheduled:
                state["idle"] = 0
                if state["promoted_left"] > 0:
                    state["promoted_left"] -= 1
            else:
                state["idle"] += 1
                thr = state["threshold"]
                if thr and state["idle"] >= thr and state["promoted_left"] == 0:
                    state["promoted_left"] = state["quantum"]
                    promoted.append(rid)
        self._pending_row = dict(
            step=self._step, t_start=start, t_scheduled=end, batch=len(scheduled),
            prefill_tokens=prefill_tokens, decode_seqs=decode_seqs, kv_tokens=kv_tokens,
            preempted=preempted, promoted=promoted, waiting=len(self.waiting),
        )  # fmt: skip
        self._step += 1
        return out

    def update_from_output(self, scheduler_output, model_runner_output):
        t_model = time.monotonic()
        reqs = {rid: self.requests.get(rid) for rid in scheduler_output.num_scheduled_tokens}
        before = {rid: r.num_output_tokens for rid, r in reqs.items() if r is not None}
        out = super().update_from_output(scheduler_output, model_runner_output)
        t_end = time.monotonic()
        emitted, finished = [], {}
        for rid, r in reqs.items():
            if r is None:
                continue
            if r.num_output_tokens > before[rid]:
                emitted.append(rid)
            if r.is_finished():
                finished[rid] = int(r.num_preemptions)
                self._celine.pop(rid, None)
        if self._step_log is not None and self._pending_row is not None:
            row = dict(self._pending_row, t_model_done=t_model, t_end=t_end, emitted=emitted,
                       finished=finished)  # fmt: skip
            self._step_log.write(json.dumps(row) + "\n")
        self._pending_row = None
        return out

    def finish_requests(self, request_ids, finished_status):
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids or [])
        for rid in ids:
            self._celine.pop(rid, None)
        return super().finish_requests(request_ids, finished_status)

    def shutdown(self) -> None:
        if self._step_log is not None:
            self._step_log.close()
            self._step_log = None
        super().shutdown()
