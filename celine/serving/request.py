"""One serving request: what the trace fixes, plus the state the simulator fills in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Request:
    rid: int
    arrival: float
    prompt_len: int
    output_len: int  # tokens it will generate (trace replay: fixed, like ignore_eos)
    program: int | None = None  # requests of one reasoning program share this id
    deadline: float | None = None  # absolute time
    meta: dict = field(default_factory=dict)

    # filled by the simulator
    generated: int = 0
    first_token_time: float | None = None
    finish_time: float | None = None
    preemptions: int = 0
    waited_iterations: int = 0  # consecutive iterations not scheduled (vllm-ltr's `idle`)
    last_scheduled: float | None = None  # time of the last iteration it ran in
    scheduled_iterations: int = 0
    service_time: float = 0.0  # summed duration of the iterations it ran in (MLFQ quantum)
    computed: int = 0  # tokens whose KV is resident (0 when waiting or preempted)
    swapped: int = 0  # tokens whose KV was swapped out to host memory (preemption="swap")
    last_token_time: float | None = None
    max_gap: float = 0.0  # largest time between consecutive tokens (first: since arrival)

    # per-request scheduler scratch, e.g. the predicted rank key (lower runs first)
    score: float | None = None

    @property
    def context_len(self) -> int:
        """Tokens that must be in KV before it can generate its next token."""
        return self.prompt_len + self.generated

    @property
    def remaining(self) -> int:
        return self.output_len - self.generated

    @property
    def finished(self) -> bool:
        return self.finish_time is not None

    @property
    def latency(self) -> float:
        return self.finish_time - self.arrival

    @property
    def ttft(self) -> float:
        return self.first_token_time - self.arrival

    @property
    def max_wait(self) -> float:
        """vllm-ltr's fairness metric: max(TTFT, largest inter-token latency)."""
        return self.max_gap

    def fresh(self) -> Request:
        """A copy with the trace fields only (for replaying one trace under many schedulers)."""
        return Request(
            rid=self.rid,
            arrival=self.arrival,
            prompt_len=self.prompt_len,
            output_len=self.output_len,
            program=self.program,
            deadline=self.deadline,
            meta=dict(self.meta),
            score=self.score,
        )
