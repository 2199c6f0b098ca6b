"""The OpenAI-compatible HTTP client (`HTTPCompletions`, what `task.engine.server=true` and
`task.engine.base_url=...` drive) against a REAL `vllm serve` started by
`celine.serving.vllm_server` on the random-init smoke Llama the engine tests use.

The server starts once per pytest session (`vllm_http_session`, tests/conftest.py; ~35 s on a
quiet 2-core machine, ~2 min on a loaded one) and its process group is killed at the end, also on a failure. Each
test generates a few hundred tokens at most. The reference for every completion is HF greedy
decoding of the same checkpoint (the sim path), which the in-process engine tests also match.
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from celine.errors import RunError
from celine.serving.completions import HTTPCompletions, Sampling, drain

N_TOKENS = 24  # per greedy completion
BLOCK = 32  # the server's KV block size (VLLMServer's default): prefix reuse is in whole blocks


def _prompt(i: int, n: int = 8) -> list[int]:
    # these prompts run past 240 tokens without an eos on this checkpoint: every greedy
    # completion here ends by length
    return [5 + (7 * i + k) % 200 for k in range(n)]


@pytest.fixture(scope="module")
def hf_greedy(tiny_vllm_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_vllm_model, dtype=torch.float32).eval()

    def greedy(prompt: list[int], n: int) -> list[int]:
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False,
                                 eos_token_id=model.config.eos_token_id, pad_token_id=0)  # fmt: skip
        return out[0, len(prompt) :].tolist()

    return greedy


@pytest.fixture
def client(vllm_server):
    c = HTTPCompletions(vllm_server.base_url)
    yield c
    c.close()


def _metric(server, name: str) -> float:
    """One series of the server's Prometheus /metrics (summed over its labels)."""
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=10) as resp:
        lines = resp.read().decode().splitlines()
    total = 0.0
    for line in lines:
        if not line.startswith(f"vllm:{name}{{"):
            continue
        total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_for(cond, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_greedy_completions_over_http_equal_hf_greedy_token_ids(client, hf_greedy):
    # three requests in flight at once: the server batches them, each must still be exact
    prompts = {f"g{i}": _prompt(i) for i in range(3)}
    for rid, prompt in prompts.items():
        client.submit(rid, prompt, Sampling(N_TOKENS, temperature=0.0))
    done = {c.rid: c for c in drain(client)}
    assert sorted(done) == sorted(prompts)
    for rid, prompt in prompts.items():
        c = done[rid]
        assert c.token_ids == hf_greedy(prompt, N_TOKENS)
        assert (c.finish_reason, c.prompt_len) == ("length", len(prompt))
        assert c.cached_tokens is not None  # the server reports prefix-cache hits


def test_chunked_continuation_of_a_token_prefix_equals_one_full_greedy_completion(client):
    """Dynasor-CoT's deployment: chunks of T tokens, each request continuing the exact token
    prefix so far, generate the chain one request would; the server reuses the prefix's KV
    in whole blocks (what the run's "with prefix reuse" accounting counts)."""
    prompt, chunk, total = _prompt(3, n=40), 8, 40
    client.submit("full", prompt, Sampling(total))
    [full] = drain(client)
    chain, cached = [], []
    while len(chain) < total:
        client.submit(f"chunk{len(chain)}", prompt + chain, Sampling(chunk))
        [c] = drain(client)
        assert c.prompt_len == len(prompt) + len(chain)
        chain += c.token_ids
        cached.append(c.cached_tokens)
    assert chain == full.token_ids and len(chain) == total
    # every chunk's prompt was computed before (by `full` or the previous chunk) up to its
    # last token, which vLLM always recomputes: all whole blocks before it are hits
    lengths = [len(prompt) + chunk * k for k in range(total // chunk)]
    assert cached == [BLOCK * ((n - 1) // BLOCK) for n in lengths]


def test_abort_closes_the_stream_and_the_server_serves_the_next_request(
    client, vllm_server, hf_greedy
):
    def generated() -> float:  # tokens the server has generated, all requests
        return _metric(vllm_server, "generation_tokens_total")

    def idle() -> bool:
        running = _metric(vllm_server, "num_requests_running")
        return running + _metric(vllm_server, "num_requests_waiting") == 0

    before, max_tokens = generated(), 240  # the longest the 256-token context allows
    client.submit("long", _prompt(4), Sampling(max_tokens))
    assert _wait_for(lambda: _metric(vllm_server, "num_requests_running") == 1)
    [c] = client.abort(["long"])
    assert c.finish_reason == "abort" and len(c.token_ids) < max_tokens
    assert client.outstanding() == 0
    # closing the stream made the server drop the request: nothing is left running, and it
    # stopped generating well before max_tokens (these prompts never end early by eos)
    assert _wait_for(idle, timeout_s=30)
    spent = generated() - before
    assert len(c.token_ids) <= spent < max_tokens
    time.sleep(0.5)
    assert generated() - before == spent
    client.submit("next", _prompt(0), Sampling(N_TOKENS))
    [nxt] = drain(client)
    assert nxt.token_ids == hf_greedy(_prompt(0), N_TOKENS)


@pytest.mark.parametrize("where", ["nothing listens", "not an OpenAI server"])
def test_a_bad_base_url_fails_with_one_line_naming_the_key(vllm_server, where):
    from celine.serving.vllm_server import free_port

    url = (
        f"http://127.0.0.1:{free_port()}"
        if where == "nothing listens"
        else f"{vllm_server.base_url}/not/here"  # answers 404
    )
    with pytest.raises(RunError) as err:
        HTTPCompletions(url)
    msg = str(err.value)
    assert f"task.engine.base_url={url!r}" in msg and "\n" not in msg


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def test_stopping_the_server_kills_its_whole_process_group(vllm_server):
    """Last in this file: the next user of the session server restarts it."""
    pgid = os.getpgid(vllm_server.proc.pid)
    assert pgid == vllm_server.proc.pid != os.getpgid(0)  # its own group, not pytest's
    assert len(_group(pgid)) >= 2  # the API server and the EngineCore it spawned
    vllm_server.stop()
    assert _wait_for(lambda: not _group(pgid), timeout_s=10)
