"""Dynasor's programs on a real engine, request by request (`engine=vllm`).

Both drive a completion backend of `celine.serving.completions` (the in-process vLLM engine
Celine starts, or an existing OpenAI-compatible server at `task.engine.base_url`):

- Dynasor-CoT as the reference deploys it: the chain is generated in chunks of T tokens, each
  chunk a completion request continuing the exact token prefix; after each chunk a probe
  request (prefix + answer-forcing suffix, a few tokens at the probe's temperature) whose
  tokens are discarded; the chain stops once the last N probe answers agree, are non-empty and
  hesitation-free (`cot.should_exit`). Every chunk k of chain c samples with its own seed, so a
  run without probes (the full-chain baseline) generates the very same chain: the comparison is
  paired token by token up to the exit.
- Self-consistency stopped by certaindex: a program's `cap` samples are requests submitted at
  once with one priority per program (gang, programs first come first served); when its first
  `detect_at` samples are back, the program stops if certaindex passes the threshold and its
  outstanding requests are aborted in the engine (their tokens so far are counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from celine.experiments.dynasor.certaindex import majority_vote, passes
from celine.experiments.dynasor.cot import ChainTrace, is_hesitant, probe_answer, should_exit
from celine.serving.completions import Sampling

_SEED_MOD = 2**31 - 1


def chunk_seed(seed: int, chain: int, chunk: int) -> int:
    """The seed of chain `chain`'s k-th chunk: fixed per (seed, chain, chunk), so any run
    that chunks a chain the same way samples the same tokens."""
    return (seed * 1_000_003 + chain * 10_007 + chunk) % _SEED_MOD


@dataclass
class LiveChain:
    """One chain of thought run on the engine, with the probes it sent."""

    problem: int
    answer: str  # the exact answer
    prompt: list[int]
    tokens: list[int] = field(default_factory=list)  # the chain (probes excluded)
    chunks: int = 0
    ended: bool = False  # eos or the token budget (not an early exit)
    exit_at: int | None = None  # chain tokens at the early exit
    exit_answer: str = ""
    positions: list[int] = field(default_factory=list)  # chain tokens when each probe ran
    probes: list[str] = field(default_factory=list)
    hesitant: list[bool] = field(default_factory=list)
    probe_generated: list[int] = field(default_factory=list)
    probe_prefilled: list[int | None] = field(default_factory=list)  # engine-measured
    chunk_prefilled: list[int | None] = field(default_factory=list)
    final: str = ""  # the answer this run gives (exit answer or the chain's own)

    @property
    def length(self) -> int:
        return len(self.tokens)

    @property
    def correct(self) -> bool:
        return self.final == self.answer

    def overhead(self, suffix_len: int) -> tuple[int, int]:
        """(with prefix reuse, without) extra tokens the probes cost, as `cot.probe_overhead`
        counts them on recorded traces."""
        reuse = sum(suffix_len + g for g in self.probe_generated)
        noreuse = sum(
            len(self.prompt) + p + suffix_len + g
            for p, g in zip(self.positions, self.probe_generated, strict=True)
        )
        return reuse, noreuse

    def measured_prefill(self) -> tuple[int | None, int | None]:
        """(chunk, probe) prompt tokens the engine computed (not served from its prefix
        cache); None when the backend does not report cache hits."""

        def total(xs):
            return None if any(x is None for x in xs) else int(sum(xs))

        return total(self.chunk_prefilled), total(self.probe_prefilled)


def run_cot_chains(
    backend,
    tokenizer,
    problems: Sequence,
    *,
    trials: int,
    interval: int,
    n_consistent: int | None,
    probe: bool,
    max_new_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    probe_suffix: str,
    probe_tokens: int,
    probe_temperature: float,
    probe_top_p: float,
    hesitation_words: Sequence[str],
    seed: int,
    tag: str = "cot",
    log=None,
) -> list[LiveChain]:
    """Run `trials` chains per problem on the backend, all chains concurrently (the engine
    batches them). `probe=False`: chunks only (the full-chain baseline). `n_consistent=None`
    with `probe=True`: probe after every chunk but never exit (a recorded trace, for choosing
    T and N on the calibration split)."""
    from celine.llm.reasoning import format_prompt, parse_boxed_str

    suffix = tokenizer(probe_suffix, add_special_tokens=False)["input_ids"]
    chains = [
        LiveChain(j // trials, str(p.answer), tokenizer(format_prompt(p))["input_ids"])
        for j, p in enumerate(q for q in problems for _ in range(trials))
    ]
    pending: dict[str, tuple[int, str]] = {}

    def submit_chunk(i: int) -> None:
        ch = chains[i]
        rid = f"{tag}-{i}-c{ch.chunks}"
        n = min(interval, max_new_tokens - ch.length)
        sampling = Sampling(n, temperature, top_p, chunk_seed(seed, i, ch.chunks))
        backend.submit(rid, ch.prompt + ch.tokens, sampling, priority=0)
        ch.chunks += 1
        pending[rid] = (i, "chunk")

    def submit_probe(i: int) -> None:
        ch = chains[i]
        rid = f"{tag}-{i}-p{len(ch.probes)}"
        sampling = Sampling(probe_tokens, probe_temperature, probe_top_p,
                            chunk_seed(seed + 1, i, len(ch.probes)))  # fmt: skip
        backend.submit(rid, ch.prompt + ch.tokens + suffix, sampling, priority=0)
        ch.positions.append(ch.length)
        pending[rid] = (i, "probe")

    for i in range(len(chains)):
        submit_chunk(i)
    done = 0
    while pending:
        for c in backend.poll():
            i, kind = pending.pop(c.rid)
            ch = chains[i]
            if kind == "chunk":
                ch.tokens.extend(c.token_ids)
                ch.chunk_prefilled.append(c.prefilled)
                if c.finish_reason == "stop" or ch.length >= max_new_tokens:
                    ch.ended = True
                elif probe:
                    submit_probe(i)
                else:
                    submit_chunk(i)
            else:
                text = tokenizer.decode(c.token_ids, skip_special_tokens=True)
                ch.probes.append(probe_answer(text))
                ch.hesitant.append(is_hesitant(text, hesitation_words))
                ch.probe_generated.append(len(c.token_ids))
                ch.probe_prefilled.append(c.prefilled)
                if n_consistent is not None and should_exit(ch.probes, ch.hesitant, n_consistent):
                    ch.exit_at, ch.exit_answer = ch.length, ch.probes[-1]
                else:
                    submit_chunk(i)
            if ch.ended or ch.exit_at is not None:
                own = parse_boxed_str(tokenizer.decode(ch.tokens, skip_special_tokens=True))
                ch.final = ch.exit_answer if ch.exit_at is not None else (own or "")
                done += 1
                if log is not None and done % 50 == 0:
                    log.info("%s: %d/%d chains done", tag, done, len(chains))
    return chains


def to_trace(chain: LiveChain, tokenizer, suffix_len: int) -> ChainTrace:
    """A chain probed after every chunk (never exiting) as a recorded trace, so the replay
    machinery of `cot` (the grid, `choose_setting`) runs on engine-made chains."""
    from celine.llm.reasoning import parse_boxed_str

    truncated = [
        parse_boxed_str(tokenizer.decode(chain.tokens[:p], skip_special_tokens=True)) or ""
        for p in chain.positions
    ]
    return ChainTrace(
        chain.problem, chain.answer, chain.length, chain.final, list(chain.positions),
        list(chain.probes), list(chain.hesitant), truncated, list(chain.probe_generated),
        prompt_len=len(chain.prompt), suffix_len=suffix_len,
    )  # fmt: skip


# -- self-consistency stopped by certaindex ------------------------------------------------------
@dataclass
class LiveProgram:
    """A self-consistency program whose samples are engine requests."""

    problem: int
    answer: str | None  # the exact answer (None: unknown, e.g. in tests)
    samples: list = field(default_factory=list)  # answers of the finished samples, in order
    sample_tokens: list[list[int]] = field(default_factory=list)
    sample_index: list[int] = field(default_factory=list)  # k of each (its seed), same order
    aborted: dict[str, int] = field(default_factory=dict)  # request id -> tokens at the abort
    stopped_early: bool = False
    certaindex_checked: bool = False

    @property
    def knob(self) -> int:
        return len(self.samples)

    @property
    def tokens(self) -> int:
        """Every token the engine generated for the program, aborted samples' included."""
        return sum(map(len, self.sample_tokens)) + sum(self.aborted.values())

    @property
    def vote(self):
        """Majority over the finished samples, ties to the lowest sample index (the order
        they were sent in), so the vote does not depend on which finished first."""
        order = sorted(range(self.knob), key=lambda j: self.sample_index[j])
        return majority_vote([self.samples[j] for j in order])

    @property
    def correct(self) -> bool:
        return self.answer is not None and self.vote == self.answer


def run_sc_programs(
    backend,
    prompts: Sequence[list[int]],
    *,
    answer_of: Callable[[list[int]], object],
    detect_at: int,
    cap: int,
    entropy_threshold: float | None,
    sampling: Sampling,
    seed: int,
    answers: Sequence[str | None] | None = None,
    first_round: int | None = None,
    tag: str = "sc",
) -> list[LiveProgram]:
    """One program per prompt, its samples submitted with priority = program index (gang-
    scheduled, programs first come first served). `first_round` samples go out at once (None:
    all `cap`); once `detect_at` are back, the program stops if certaindex passes
    `entropy_threshold` (None: never stop, the fixed budget) and its outstanding samples are
    aborted; otherwise the rest of the cap is submitted. `first_round=detect_at` is the
    paper's two rounds (nothing to abort, the rest waits for the decision); `cap` runs all
    samples at once and aborts what is outstanding at the decision."""
    programs = [
        LiveProgram(i, None if answers is None else answers[i]) for i in range(len(prompts))
    ]
    pending: dict[str, tuple[int, int]] = {}  # request id -> (program, sample index)
    submitted = [0] * len(prompts)
    first = cap if first_round is None else max(min(first_round, cap), detect_at)

    def submit(i: int, n: int) -> None:
        for k in range(submitted[i], submitted[i] + n):
            rid = f"{tag}-{i}-s{k}"
            s = Sampling(sampling.max_tokens, sampling.temperature, sampling.top_p,
                         chunk_seed(seed, i, k))  # fmt: skip
            backend.submit(rid, prompts[i], s, priority=i)
            pending[rid] = (i, k)
        submitted[i] += n

    for i in range(len(prompts)):
        submit(i, first)
    while pending:
        for c in backend.poll():
            if c.rid not in pending:
                continue
            i, k = pending.pop(c.rid)
            prog = programs[i]
            prog.samples.append(answer_of(c.token_ids))
            prog.sample_tokens.append(list(c.token_ids))
            prog.sample_index.append(k)
            if prog.knob == detect_at and not prog.certaindex_checked:
                prog.certaindex_checked = True
                if entropy_threshold is not None and passes(
                    prog.samples, entropy_threshold=entropy_threshold
                ):
                    prog.stopped_early = True
                    rest = [r for r, (j, _) in pending.items() if j == i]
                    for a in backend.abort(rest):
                        pending.pop(a.rid, None)
                        prog.aborted[a.rid] = len(a.token_ids)
                elif submitted[i] < cap:
                    submit(i, cap - submitted[i])
    return programs


def wall(fn, *args, **kwargs):
    """(result, seconds): wall time on a shared machine is indicative only."""
    t0 = time.monotonic()
    out = fn(*args, **kwargs)
    return out, time.monotonic() - t0
