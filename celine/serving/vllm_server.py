"""A local OpenAI-compatible vLLM server (`vllm serve`) on 127.0.0.1 and a free port.

For the deployment the Dynasor reference uses (a client talking to the engine's
`/v1/completions` endpoint) and for checking `HTTPCompletions` against a real server.
`VLLMServer(...)` is a context manager: the server runs in its own process group and is
always stopped (SIGTERM, then SIGKILL to the group) on exit, an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from celine.serving.engine_config import require_vllm
from celine.serving.vllm_engine import EngineStartError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VLLMServer:
    def __init__(self, model_path, *, work_dir, max_model_len: int, max_num_seqs: int = 64,
                 kv_cache_gib: int = 1, omp_threads: int | None = None, dtype: str = "float32",
                 prefix_caching: bool = True, block_size: int | None = 32,
                 startup_timeout_s: float = 900.0) -> None:  # fmt: skip
        self.model_path = str(model_path)
        self.work_dir = Path(work_dir)
        self.max_model_len, self.max_num_seqs = int(max_model_len), int(max_num_seqs)
        self.kv_cache_gib, self.omp_threads, self.dtype = kv_cache_gib, omp_threads, dtype
        self.prefix_caching, self.block_size = prefix_caching, block_size
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.work_dir / "vllm_server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> VLLMServer:
        require_vllm()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model_path, "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", self.dtype, "--max-model-len", str(self.max_model_len),
            "--max-num-seqs", str(self.max_num_seqs), "--enforce-eager",
            "--enable-prompt-tokens-details",  # cached prompt tokens in each usage record
            "--scheduling-policy", "priority",  # programs are gang-scheduled by priority
            "--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching",
        ]  # fmt: skip
        if self.block_size:
            cmd += ["--block-size", str(self.block_size)]
        # dev mode serves /reset_prefix_cache (runs compare their measured prefills)
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib),
                   VLLM_CPU_OMP_THREADS_BIND="nobind", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
                   VLLM_SERVER_DEV_MODE="1")  # fmt: skip
        if self.omp_threads:
            env["OMP_NUM_THREADS"] = str(self.omp_threads)
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # fmt: skip
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            while True:
                if self.proc.poll() is not None:
                    raise EngineStartError(
                        f"vllm serve exited with code {self.proc.returncode}", self.log_path
                    )
                if self._healthy():
                    return self
                if time.monotonic() > deadline:
                    raise EngineStartError(
                        f"vllm serve not healthy after {self.startup_timeout_s:.0f} s",
                        self.log_path,
                    )
                time.sleep(2.0)
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 20 s (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the engine core it spawned, if it lingers
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
