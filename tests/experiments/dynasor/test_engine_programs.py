"""Dynasor's programs on a real engine (`engine_programs.py`): self-consistency whose samples
are vLLM requests stopped by certaindex (outstanding requests aborted in the engine), and
Dynasor-CoT's chunk + probe loop.

The engine tests use the session's one vLLM engine (`vllm_engine`, tests/conftest.py: a
random-init smoke Llama, one running sequence at a time); they generate a few hundred tokens.
The exit logic of the CoT loop is also checked on a scripted backend (no engine).
"""

from __future__ import annotations

import json

import pytest
import torch

from celine.experiments.dynasor.engine_programs import run_cot_chains, run_sc_programs
from celine.serving.completions import Completion, Sampling

MAX_TOKENS = 16


def _prompts():
    return [[5 + (7 * i + k) % 200 for k in range(8)] for i in range(2)]


def _hf_greedy(path, prompt, n):
    """The HF (sim-path) greedy continuation of `prompt` on the same checkpoint."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False,
                             eos_token_id=model.config.eos_token_id, pad_token_id=0)  # fmt: skip
    return out[0, len(prompt) :].tolist()


def _emitted(step_log, rids) -> dict[str, int]:
    """Tokens the EngineCore emitted per request id, from its own step log."""
    counts = dict.fromkeys(rids, 0)
    for line in step_log.read_text().splitlines():
        for rid in json.loads(line)["emitted"]:
            if rid in counts:
                counts[rid] += 1
    return counts


def test_sc_on_engine_stops_at_certaindex_and_aborted_requests_are_gone(vllm_engine):
    from celine.serving.completions import EngineCompletions

    backend = EngineCompletions(vllm_engine)
    cap, detect = 6, 3
    progs = run_sc_programs(
        backend, _prompts(), answer_of=tuple, detect_at=detect, cap=cap, entropy_threshold=0.99,
        sampling=Sampling(MAX_TOKENS, temperature=0.0), seed=0, tag="sc-greedy",
    )  # fmt: skip
    assert backend.outstanding() == 0  # nothing of the aborted samples is left in the engine
    for i, prog in enumerate(progs):
        # greedy samples all agree: certaindex 1 at detection, the other cap - detect aborted
        assert prog.stopped_early and prog.knob == detect and len(prog.aborted) == cap - detect
        assert prog.tokens < cap * MAX_TOKENS
        # the engine's samples are the HF path's greedy continuation of the same prompt
        want = _hf_greedy(vllm_engine.model_path, _prompts()[i], MAX_TOKENS)
        assert all(s == want for s in prog.sample_tokens)
        assert prog.vote == tuple(want)
    # the EngineCore emitted no token for an aborted request after its abort
    aborted = {rid: n for p in progs for rid, n in p.aborted.items()}
    assert _emitted(vllm_engine.step_log, aborted) == aborted
    # two rounds (the paper's static policy): only detect_at samples were ever sent
    rounds = run_sc_programs(
        backend, _prompts(), answer_of=tuple, detect_at=detect, cap=cap, entropy_threshold=0.99,
        sampling=Sampling(MAX_TOKENS, temperature=0.0), seed=0, first_round=detect,
        tag="sc-rounds",
    )  # fmt: skip
    for prog, greedy in zip(rounds, progs, strict=True):
        assert prog.stopped_early and prog.knob == detect and not prog.aborted
        assert prog.tokens == detect * len(greedy.sample_tokens[0])


def test_sc_on_engine_runs_to_the_cap_when_samples_disagree(vllm_engine):
    from celine.serving.completions import EngineCompletions

    backend = EngineCompletions(vllm_engine)
    cap = 4
    progs = run_sc_programs(
        backend, _prompts(), answer_of=tuple, detect_at=2, cap=cap, entropy_threshold=0.99,
        sampling=Sampling(MAX_TOKENS, temperature=1.0), seed=1, tag="sc-sampled",
    )  # fmt: skip
    rounds = run_sc_programs(
        backend, _prompts(), answer_of=tuple, detect_at=2, cap=cap, entropy_threshold=0.99,
        sampling=Sampling(MAX_TOKENS, temperature=1.0), seed=1, first_round=2, tag="sc-r",
    )  # fmt: skip
    for prog, again in zip(progs, rounds, strict=True):
        # a random model sampled at T=1: distinct samples, certaindex 0 at detection
        assert len(set(prog.samples)) == cap
        assert not prog.stopped_early and prog.knob == cap and not prog.aborted
        assert prog.tokens == sum(map(len, prog.sample_tokens))
        # in two rounds the rest of the cap is sent after the failed check: the same samples
        # (per-sample seeds), only in another finishing order
        assert not again.stopped_early and again.knob == cap
        assert sorted(again.samples) == sorted(prog.samples)


class _Tok:
    """Token ids are characters' code points (decode/encode exact), eos = 0."""

    eos_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if i)


class _ScriptedBackend:
    """Chunks emit 'x' tokens (eos after `length`); each probe answers the next scripted text."""

    backend = "scripted"

    def __init__(self, length: int, probe_texts: list[str]) -> None:
        self.length, self.probe_texts = length, list(probe_texts)
        self.queue: list[Completion] = []
        self.submitted: list[tuple[str, list[int], Sampling]] = []

    def submit(self, rid, prompt, sampling, priority=0):
        self.submitted.append((rid, list(prompt), sampling))
        if "-p" in rid:
            toks = [ord(c) for c in self.probe_texts.pop(0)]
            self.queue.append(Completion(rid, len(prompt), toks, "length"))
            return
        done = len(prompt) - len(self.submitted[0][1])  # chain tokens so far
        n = min(sampling.max_tokens, self.length - done)
        toks = [ord("x")] * n
        reason = "length"
        if done + n >= self.length:
            toks, reason = toks + [0], "stop"
        self.queue.append(Completion(rid, len(prompt), toks, reason))

    def poll(self):
        out, self.queue = self.queue, []
        return out

    def outstanding(self):
        return len(self.queue)


class _Problem:
    question, answer = "1+1", 7


def _cot(backend, n_consistent, probe=True):
    return run_cot_chains(
        backend, _Tok(), [_Problem()], trials=1, interval=8, n_consistent=n_consistent,
        probe=probe, max_new_tokens=64, temperature=0.7, probe_suffix=" \\boxed{",
        probe_tokens=4, probe_temperature=0.6, probe_top_p=0.95,
        hesitation_words=["wait", "no"], seed=3,
    )[0]  # fmt: skip


def test_cot_loop_exits_on_n_consistent_certain_probes_and_counts_them():
    backend = _ScriptedBackend(length=40, probe_texts=["5}", "7}", "7}", "7}"])
    ch = _cot(backend, n_consistent=2)
    # probes after 8, 16, 24 tokens answer 5, 7, 7: the last two agree -> exit at 24
    assert ch.exit_at == 24 and ch.length == 24 and ch.final == "7" and ch.correct
    assert ch.probes == ["5", "7", "7"] and ch.positions == [8, 16, 24]
    assert ch.probe_generated == [2, 2, 2]
    suffix = len(" \\boxed{")
    assert ch.overhead(suffix) == (3 * (suffix + 2),
                                   sum(len(ch.prompt) + p + suffix + 2 for p in (8, 16, 24)))  # fmt: skip
    # every request continued the exact token prefix: chunk k's prompt = prompt + 8k tokens
    chunk_prompts = [p for rid, p, _ in backend.submitted if "-c" in rid]
    assert [len(p) - len(ch.prompt) for p in chunk_prompts] == [0, 8, 16]
    # chunk seeds are per (chain, chunk): the baseline without probes repeats them
    base_backend = _ScriptedBackend(length=40, probe_texts=[])
    full = _cot(base_backend, None, probe=False)
    assert full.length == 41 and full.tokens[:24] == ch.tokens and not full.probes
    seeds = [s.seed for rid, _, s in backend.submitted if "-c" in rid]
    assert seeds == [s.seed for rid, _, s in base_backend.submitted][:3]


def test_cot_loop_does_not_exit_on_hesitant_or_disagreeing_probes():
    backend = _ScriptedBackend(length=40, probe_texts=["no 7}", "7}", "8}", "8 wait}", "9}"])
    ch = _cot(backend, n_consistent=2)
    assert ch.exit_at is None and ch.ended and ch.length == 41  # ran to its eos
    assert ch.final == ""  # the chain's own answer: none boxed
    assert len(ch.probes) == 4  # after 8, 16, 24, 32 tokens; the 5th chunk ends at eos


@pytest.mark.parametrize("probe", [False, True])
def test_cot_chunks_on_engine_equal_the_uninterrupted_greedy_chain(vllm_engine, probe):
    """Chunks of T continuing the exact token prefix generate what one request would (HF
    greedy on the same checkpoint), and probes in between leave the chain untouched."""
    from transformers import AutoTokenizer

    from celine.llm.reasoning import format_prompt
    from celine.serving.completions import EngineCompletions

    tok = AutoTokenizer.from_pretrained(vllm_engine.model_path)
    ch = run_cot_chains(
        EngineCompletions(vllm_engine), tok, [_Problem()], trials=1, interval=8,
        n_consistent=None, probe=probe, max_new_tokens=24, temperature=0.0,
        probe_suffix=" \\boxed{", probe_tokens=3, probe_temperature=0.0, probe_top_p=1.0,
        hesitation_words=["wait"], seed=0, tag=f"cot-{probe}",
    )[0]  # fmt: skip
    want = _hf_greedy(vllm_engine.model_path, tok(format_prompt(_Problem()))["input_ids"], 24)
    assert ch.tokens == want[: len(ch.tokens)]
    assert ch.ended and (len(ch.tokens) == 24 or ch.tokens[-1] == tok.eos_token_id)
    assert len(ch.probes) == (((len(ch.tokens) - 1) // 8) if probe else 0)
