"""Token-level completion requests against a real engine: submit, poll, abort.

Programs that decide their next request from the last one's output (Dynasor-CoT's chunks and
probes, self-consistency stopped by certaindex) drive an engine through this small interface,
with two backends that behave alike:

- `EngineCompletions(engine)`: the in-process `VLLMEngine` (its `LLMEngine`; the engine layer
  of `celine.serving` is in-process, so a run that starts vLLM itself uses this one). `poll()`
  runs one engine step.
- `HTTPCompletions(base_url)`: an existing OpenAI-compatible server (`vllm serve ...`), through
  its `/v1/completions` endpoint with token-id prompts (`return_token_ids`, streamed, so an
  abort closes the connection and the server drops the request, and the tokens generated
  until then are known). One thread per outstanding request.

Prompts are token ids, never text: a chain continued from its exact token prefix is the chain
an uninterrupted generation would have produced (text would be re-tokenized differently).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from celine.errors import RunError


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None  # per-request generator: the same seed samples the same tokens


@dataclass
class Completion:
    rid: str
    prompt_len: int
    token_ids: list[int]
    finish_reason: str  # "stop" (eos), "length" (max_tokens) or "abort"
    # prompt tokens the engine served from its prefix cache (None: the server does not say)
    cached_tokens: int | None = None

    @property
    def prefilled(self) -> int | None:
        """Prompt tokens the engine computed for this request (None: unknown)."""
        return None if self.cached_tokens is None else self.prompt_len - self.cached_tokens


class EngineCompletions:
    """Completions on the in-process `VLLMEngine` (started and shut down by its owner)."""

    backend = "in-process"

    def __init__(self, engine) -> None:
        if engine.engine is None:
            raise RunError("the vLLM engine is not running (use `with VLLMEngine(...)`)")
        self.engine = engine
        self._live: dict[str, tuple[int, int]] = {}  # rid -> (prompt length, tokens so far)

    def submit(self, rid: str, prompt: list[int], sampling: Sampling, priority: int = 0) -> None:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            max_tokens=sampling.max_tokens, temperature=sampling.temperature,
            top_p=sampling.top_p, seed=sampling.seed, detokenize=False,
        )  # fmt: skip
        self.engine.engine.add_request(
            rid, TokensPrompt(prompt_token_ids=list(prompt)), params, priority=int(priority)
        )
        self._live[rid] = (len(prompt), 0)

    def poll(self) -> list[Completion]:
        """One engine step; the requests that finished in it."""
        if not self._live:
            return []
        done = []
        for out in self.engine.engine.step():
            if out.request_id not in self._live:
                continue
            n_prompt, _ = self._live[out.request_id]
            toks = list(out.outputs[0].token_ids)
            self._live[out.request_id] = (n_prompt, len(toks))
            if out.finished:
                del self._live[out.request_id]
                reason = out.outputs[0].finish_reason or "stop"
                done.append(Completion(out.request_id, n_prompt, toks, reason,
                                       out.num_cached_tokens))  # fmt: skip
        return done

    def abort(self, rids) -> list[Completion]:
        """Drop outstanding requests from the engine; what each had generated (token ids are
        not kept for aborted requests: only their count is, as `[-1] * n`)."""
        rids = [r for r in rids if r in self._live]
        if rids:
            self.engine.engine.abort_request(rids)
        out = []
        for r in rids:
            n_prompt, n_tok = self._live.pop(r)
            out.append(Completion(r, n_prompt, [-1] * n_tok, "abort"))
        return out

    def outstanding(self) -> int:
        """Requests the engine itself still holds (waiting or running)."""
        return int(self.engine.engine.get_num_unfinished_requests())

    def reset_prefix_cache(self) -> bool:
        """Empty the engine's prefix cache (between runs whose prefills are compared)."""
        return bool(self.engine.engine.reset_prefix_cache())

    def version(self) -> str:
        from celine.serving.vllm_engine import vllm_version

        return vllm_version()

    def close(self) -> None:
        pass


class HTTPCompletions:
    """Completions on an existing OpenAI-compatible vLLM server at `base_url`."""

    backend = "http"

    def __init__(self, base_url: str, model: str | None = None, timeout_s: float = 600.0,
                 max_workers: int = 256, url_key: str = "task.engine.base_url") -> None:  # fmt: skip
        # url_key: where the URL came from, named in the error when no server answers there
        self.url_key = url_key
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self.timeout_s = timeout_s
        self.model = model or self._served_model()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="completion")
        self._futures: dict[str, Future] = {}
        self._stop: dict[str, threading.Event] = {}

    def _served_model(self) -> str:
        where = f"{self.url_key}={self.base_url!r}"
        try:
            with urllib.request.urlopen(f"{self.base_url}/v1/models", timeout=30) as resp:
                models = json.load(resp)["data"]
        # refused / unknown host (OSError), a bad port (InvalidURL), a server that is not
        # OpenAI-compatible (404 is an OSError; HTML or other JSON: ValueError, KeyError)
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as err:
            why = " ".join(f"{type(err).__name__}: {err}".split())  # one line
            raise RunError(
                f"{where}: no OpenAI-compatible server answers GET /v1/models there ({why}); "
                "start one (`vllm serve <model>`) or drop the URL to let Celine start vLLM"
            ) from err
        if not models:
            raise RunError(f"{where}: the server serves no model")
        return models[0]["id"]

    def version(self) -> str:
        url = f"{self.base_url}/version"
        with (
            contextlib.suppress(OSError, ValueError, KeyError),
            urllib.request.urlopen(url, timeout=10) as resp,
        ):
            return f"vllm=={json.load(resp)['version']} (server)"
        return "unknown (server)"

    def submit(self, rid: str, prompt: list[int], sampling: Sampling, priority: int = 0) -> None:
        body = {
            "model": self.model, "prompt": list(prompt), "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed,
            "stream": True, "stream_options": {"include_usage": True},
            "return_token_ids": True, "priority": int(priority),
        }  # fmt: skip
        stop = threading.Event()
        self._stop[rid] = stop
        self._futures[rid] = self._pool.submit(self._request, rid, len(prompt), body, stop)

    def _request(self, rid, n_prompt, body, stop) -> Completion:
        req = urllib.request.Request(
            f"{self.base_url}/v1/completions", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        tokens, reason, cached = [], None, None
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as err:  # e.g. a priority on an fcfs server
            detail = err.read().decode(errors="replace")[:300]
            raise RunError(f"{self.base_url} refused request {rid}: {err.code} {detail}") from err
        with resp:
            for raw in resp:  # server-sent events: "data: {...}" lines
                if stop.is_set():
                    reason = "abort"  # closing the stream makes the server abort the request
                    break
                line = raw.decode().strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[len("data:") :])
                for choice in chunk.get("choices") or []:
                    tokens.extend(choice.get("token_ids") or [])
                    reason = choice.get("finish_reason") or reason
                usage = chunk.get("usage") or {}
                details = usage.get("prompt_tokens_details") or {}
                if details.get("cached_tokens") is not None:
                    cached = int(details["cached_tokens"])
        return Completion(rid, n_prompt, tokens, reason or "stop", cached)

    def poll(self, timeout_s: float = 0.05) -> list[Completion]:
        if not self._futures:
            return []
        by_future = {f: rid for rid, f in self._futures.items()}
        done, _ = wait(list(by_future), timeout=timeout_s, return_when=FIRST_COMPLETED)
        out = []
        for f in done:
            rid = by_future[f]
            del self._futures[rid]
            self._stop.pop(rid, None)
            out.append(f.result())  # a failed request raises here, with the server's error
        return out

    def abort(self, rids) -> list[Completion]:
        rids = [r for r in rids if r in self._futures]
        for r in rids:
            self._stop[r].set()
        out = []
        for r in rids:
            fut = self._futures.pop(r)
            self._stop.pop(r, None)
            if fut.cancel():  # never started
                out.append(Completion(r, 0, [], "abort"))
                continue
            out.append(fut.result())  # "abort", or its own reason if it ended first
        return out

    def outstanding(self) -> int:
        return len(self._futures)

    def reset_prefix_cache(self) -> bool:
        """POST /reset_prefix_cache (served only with VLLM_SERVER_DEV_MODE=1): False when the
        server refuses, and then measured prefills of later runs include earlier runs' hits."""
        req = urllib.request.Request(f"{self.base_url}/reset_prefix_cache", data=b"",
                                     method="POST")  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status == 200
        except OSError:
            return False

    def close(self) -> None:
        for ev in self._stop.values():
            ev.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


def drain(backend, sleep_s: float = 0.0) -> list[Completion]:
    """Poll until nothing is outstanding (tests and simple callers)."""
    out = []
    while backend.outstanding():
        out.extend(backend.poll())
        if sleep_s:
            time.sleep(sleep_s)
    return out
