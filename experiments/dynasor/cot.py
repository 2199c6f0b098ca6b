"""Dynasor-CoT ("probe in the middle", paper §3.4): decode a chain in chunks, probe it with an
answer-forcing suffix after each chunk, discard the probe tokens, and exit once the last
`n_consistent` probe answers agree, are non-empty and carry no hesitation word.

The curves are made as the reference harness makes them (TokenDeprivation): record, for every
chain, a probe every `trace_step` tokens once, then replay any (interval, n_consistent) offline.
A probe at position t sees exactly the first t tokens of the chain, so the replay is what the
online loop would do. Probe work is counted two ways (issue 24: the savings must be net of it):
with prefix reuse (the engine keeps the chain's KV cache, a probe costs its suffix and its
generated tokens) and without (every probe re-reads the prompt and the chain so far).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def probe_answer(text: str) -> str:
    """The text before the first unmatched '}' (the probe began inside ``\\boxed{``), without
    spaces; '' when the probe closed nothing (no answer)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return "".join(text[:i].split())
            depth -= 1
    return ""


def is_hesitant(text: str, words: Sequence[str]) -> bool:
    """Reference rule: a substring test on the lower-cased probe ("no" also hits "not")."""
    low = text.lower()
    return any(w in low for w in words)


def should_exit(answers: Sequence[str], hesitant: Sequence[bool], n_consistent: int) -> bool:
    """Exit after the newest probe iff the last `n_consistent` probe answers are all equal,
    all non-empty and none hesitant.

    The reference's vLLM path (core/entropy.py::should_early_exit) ends in an unconditional
    `return True`, so it exits on disagreeing probes too (issue #25); here consistency is
    required, as the paper's rule (C_k >= tau with tau = 1) and the reference proxy say."""
    if len(answers) < n_consistent:
        return False
    window = list(answers[-n_consistent:])
    if any(a == "" for a in window) or any(hesitant[-n_consistent:]):
        return False
    return all(a == window[0] for a in window)


@dataclass
class ChainTrace:
    """One sampled chain and the probes recorded along it."""

    problem: int  # index into the problem list
    answer: str  # the exact answer, as a normalised string
    length: int  # generated tokens (eos included when it stopped)
    final: str  # the chain's own final boxed answer ('' if none)
    positions: list[int] = field(default_factory=list)  # probe after this many tokens
    probes: list[str] = field(default_factory=list)  # probe answers
    hesitant: list[bool] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)  # the chain's own answer when cut there
    probe_tokens: list[int] = field(default_factory=list)
    prompt_len: int = 0  # prompt tokens (what a probe without prefix reuse re-reads)
    suffix_len: int = 0  # probe suffix tokens (prefilled by every probe)


def replay_exit(trace: ChainTrace, interval: int, n_consistent: int, step: int) -> tuple[int, str]:
    """(tokens generated, answer) of Dynasor-CoT on this chain with probes every `interval`
    tokens: the first probe point where the exit rule fires, else the full chain."""
    every = interval // step
    answers, hes = [], []
    for k, pos in enumerate(trace.positions):
        if (k + 1) % every:
            continue
        answers.append(trace.probes[k])
        hes.append(trace.hesitant[k])
        if should_exit(answers, hes, n_consistent):
            return pos, answers[-1]
    return trace.length, trace.final


def probes_used(trace: ChainTrace, interval: int, tokens: int, step: int) -> int:
    """Tokens the probes generated (up to the exit at `tokens`)."""
    every = interval // step
    return sum(
        t
        for k, (pos, t) in enumerate(zip(trace.positions, trace.probe_tokens, strict=True))
        if (k + 1) % every == 0 and pos <= tokens
    )


def probe_overhead(trace: ChainTrace, interval: int, tokens: int, step: int) -> tuple[int, int]:
    """(with prefix reuse, without) extra tokens the probes up to the exit cost: with reuse a
    probe prefills its suffix and generates its answer; without, it also re-reads the prompt
    and the chain up to its position."""
    every = interval // step
    reuse = noreuse = 0
    for k, (pos, t) in enumerate(zip(trace.positions, trace.probe_tokens, strict=True)):
        if (k + 1) % every == 0 and pos <= tokens:
            reuse += trace.suffix_len + t
            noreuse += trace.prompt_len + pos + trace.suffix_len + t
    return reuse, noreuse


def replay_truncation(trace: ChainTrace, budget: int, step: int, forced: bool) -> tuple[int, str]:
    """A fixed token budget. `forced=False` scores the truncated chain's own answer (the
    reference's baseline curve); `forced=True` forces an answer with one probe at the budget
    (a stronger baseline; budgets off the probe grid round down)."""
    if trace.length <= budget:
        return trace.length, trace.final
    k = budget // step - 1
    if forced:
        return budget, trace.probes[k] if k >= 0 else ""
    return budget, trace.truncated[k] if k >= 0 else ""


def collect_traces(
    model,
    tokenizer,
    problems,
    *,
    trials: int,
    temperature: float,
    max_new_tokens: int,
    step: int,
    probe_suffix: str,
    probe_tokens: int,
    probe_temperature: float,
    probe_top_p: float,
    hesitation_words: Sequence[str],
    seed: int,
    batch_size: int,
    log=None,
) -> list[ChainTrace]:
    """Sample `trials` chains per problem, then probe every chain every `step` tokens (all
    probes batched with a KV cache; each probe continues the exact token prefix)."""
    import torch

    from celine.llm.evaluate import generate
    from celine.llm.reasoning import format_prompt, parse_boxed_str

    prompts = [format_prompt(p) for p in problems for _ in range(trials)]
    chains = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        batch_size=batch_size,
    )
    suffix = tokenizer(probe_suffix, add_special_tokens=False)["input_ids"]
    traces, jobs = [], []
    for j, (prompt, g) in enumerate(zip(prompts, chains, strict=True)):
        p = problems[j // trials]
        final = parse_boxed_str(g.text) or ""
        head = tokenizer(prompt)["input_ids"]
        tr = ChainTrace(
            j // trials,
            str(p.answer),
            len(g.token_ids) + int(g.stopped),
            final,
            prompt_len=len(head),
            suffix_len=len(suffix) if probe_tokens > 0 else 0,
        )
        for pos in range(step, len(g.token_ids) + 1, step):
            tr.positions.append(pos)
            cut = tokenizer.decode(g.token_ids[:pos], skip_special_tokens=True)
            tr.truncated.append(parse_boxed_str(cut) or "")
            if probe_tokens > 0:
                jobs.append((len(traces), head + g.token_ids[:pos] + suffix))
            else:  # chains only (the truncation baseline): no probes
                tr.probes.append("")
                tr.hesitant.append(False)
                tr.probe_tokens.append(0)
        traces.append(tr)
    if log is not None:
        log.info("probing %d chains at %d points", len(traces), len(jobs))
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    torch.manual_seed(seed + 1)
    device = next(model.parameters()).device
    # longest first keeps padding low inside each batch
    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][1]))
    results: dict[int, tuple[str, int]] = {}
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        seqs = [jobs[i][1] for i in idx]
        width = max(map(len, seqs))
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=probe_tokens,
                do_sample=probe_temperature > 0,
                temperature=probe_temperature if probe_temperature > 0 else None,
                top_p=probe_top_p if probe_temperature > 0 else None,
                top_k=0 if probe_temperature > 0 else None,
                eos_token_id=eos,
                pad_token_id=pad,
            )
        for i, row in zip(idx, out[:, width:].tolist(), strict=True):
            n = row.index(eos) + 1 if eos in row else len(row)
            results[i] = (tokenizer.decode(row[:n], skip_special_tokens=True), n)
        if log is not None and (b // batch_size) % 10 == 0:
            log.info("probes %d/%d", min(b + batch_size, len(order)), len(order))
    for i, (t, _) in enumerate(jobs):
        text, n = results[i]
        traces[t].probes.append(probe_answer(text))
        traces[t].hesitant.append(is_hesitant(text, hesitation_words))
        traces[t].probe_tokens.append(n)
    return traces


@dataclass
class CotPoint:
    policy: str
    setting: str
    accuracy: float
    accuracy_se: float  # binomial, over chains
    tokens: float  # generated tokens per chain (probes excluded)
    probe_tokens: float  # tokens the probes generated, per chain
    # extra tokens per chain that probing costs (suffix + probe answer; without reuse also
    # the prompt and chain prefix each probe re-reads)
    overhead_reuse: float = 0.0
    overhead_noreuse: float = 0.0
    # per chain, for intervals over problems (not in the tables)
    correct: list = field(default_factory=list, repr=False)
    chain_tokens: list = field(default_factory=list, repr=False)
    chain_reuse: list = field(default_factory=list, repr=False)
    chain_noreuse: list = field(default_factory=list, repr=False)

    def row(self) -> dict:
        skip = {"correct", "chain_tokens", "chain_reuse", "chain_noreuse"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


def _point(policy, setting, results, probe_tok, overheads=()) -> CotPoint:
    correct = np.array([c for _, c in results], dtype=float)
    se = float(correct.std(ddof=1) / np.sqrt(len(correct))) if len(correct) > 1 else 0.0
    reuse = [r for r, _ in overheads] or [0] * len(results)
    noreuse = [n for _, n in overheads] or [0] * len(results)
    return CotPoint(
        policy,
        setting,
        float(correct.mean()),
        se,
        float(np.mean([t for t, _ in results])),
        float(np.mean(probe_tok)) if probe_tok else 0.0,
        float(np.mean(reuse)),
        float(np.mean(noreuse)),
        correct.tolist(),
        [float(t) for t, _ in results],
        [float(r) for r in reuse],
        [float(n) for n in noreuse],
    )


def cot_point(traces, interval: int, n_consistent: int, step: int) -> CotPoint:
    results, probe_tok, overheads = [], [], []
    for tr in traces:
        tokens, ans = replay_exit(tr, interval, n_consistent, step)
        results.append((tokens, ans == tr.answer))
        probe_tok.append(probes_used(tr, interval, tokens, step))
        overheads.append(probe_overhead(tr, interval, tokens, step))
    return _point("dynasor_cot", f"T={interval},N={n_consistent}", results, probe_tok, overheads)


def net_savings(point: CotPoint, full: CotPoint, reuse: bool) -> float:
    """1 - (chain tokens + probe overhead) / full-chain tokens."""
    over = point.overhead_reuse if reuse else point.overhead_noreuse
    return 1.0 - (point.tokens + over) / full.tokens


def choose_setting(
    traces, intervals, consistents, step: int
) -> tuple[tuple[int, int], list[CotPoint], CotPoint]:
    """Profiler-guided choice of (T, N) on calibration traces: the largest net saving (probe
    tokens counted, prefix reuse) among the settings that lose no accuracy against full chains;
    if none is lossless, the most accurate one. Returns ((T, N), the grid, full chains)."""
    full = full_point(traces)
    grid = [cot_point(traces, i, n, step) for i in intervals for n in consistents]
    keys = [(i, n) for i in intervals for n in consistents]
    lossless = [k for k, p in zip(keys, grid, strict=True) if p.accuracy >= full.accuracy - 1e-12]
    if lossless:
        by = dict(zip(keys, grid, strict=True))
        best = max(lossless, key=lambda k: (net_savings(by[k], full, True), -k[0]))
    else:
        best = max(zip(keys, grid, strict=True), key=lambda kp: (kp[1].accuracy, -kp[1].tokens))[0]
    return best, grid, full


def full_point(traces) -> CotPoint:
    """Every chain run to its end (no probes)."""
    results = [(tr.length, tr.final == tr.answer) for tr in traces]
    return _point("full_chain", "to eos", results, [])


def truncation_point(traces, budget: int, step: int, forced: bool = False) -> CotPoint:
    results = []
    for tr in traces:
        tokens, ans = replay_truncation(tr, budget, step, forced)
        results.append((tokens, ans == tr.answer))
    name = "budget_forcing" if forced else "truncation"
    # budget forcing probes once, at the budget (the recorded probe there)
    over = []
    for tr in traces:
        k = budget // step - 1
        if forced and tr.length > budget and 0 <= k < len(tr.probe_tokens):
            gen = tr.suffix_len + tr.probe_tokens[k]
            over.append((gen, tr.prompt_len + budget + gen))
        else:
            over.append((0, 0))
    return _point(name, f"B={budget}", results, [], over if forced else ())
