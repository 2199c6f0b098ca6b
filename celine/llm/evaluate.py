"""Shared evaluation of causal LMs: perplexity, a unigram baseline, generation with a
KV cache, and reasoning accuracy per difficulty.

Every function takes any model that maps input_ids to `.logits` (perplexity) or any
transformers causal LM (generate), so tiny_llama and `hf` checkpoints are evaluated
by the same code.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


class Progress:
    """Logs `what: done/total (pct), elapsed, ETA` at most every `every_s` seconds, so a long
    evaluation shows it is moving while a short one stays silent."""

    def __init__(self, what: str, total: int, every_s: float = 10.0) -> None:
        self.what, self.total, self.every_s = what, total, every_s
        self.started = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s or done >= self.total:
            return
        self.last = now
        elapsed = now - self.started
        eta = elapsed / max(done, 1) * (self.total - done)
        log.info(
            "%s: %d/%d (%.0f%%), %.0f s elapsed, about %.0f s left",
            self.what, done, self.total, 100 * done / self.total, elapsed, eta,
        )  # fmt: skip


class PerplexityResult(NamedTuple):
    perplexity: float
    mean_nll: float  # nats per token
    tokens: int  # number of tokens scored


@torch.no_grad()
def perplexity(
    model, token_ids, window: int, batch_size: int = 8, device: str | torch.device = "cpu"
) -> PerplexityResult:
    """exp(mean NLL) over `token_ids` (1-D) in non-overlapping windows.

    Window i feeds tokens [iW, iW+W) and scores their successors [iW+1, iW+W+1), so
    every token except the first is scored exactly once, with the context available
    inside its window. The last window may be shorter.
    """
    ids = torch.as_tensor(np.asarray(token_ids), dtype=torch.long).flatten()
    if ids.numel() < 2:
        raise ValueError(f"perplexity needs at least 2 tokens, got {ids.numel()}")
    device = torch.device(device)
    n_pred = ids.numel() - 1
    starts = list(range(0, n_pred, window))
    total_nll, total_tok = 0.0, 0
    full = [s for s in starts if s + window <= n_pred]
    rest = [s for s in starts if s + window > n_pred]
    groups = [full[i : i + batch_size] for i in range(0, len(full), batch_size)] + [
        [s] for s in rest
    ]
    progress = Progress(f"perplexity over {n_pred} tokens, batches", len(groups))
    for done, group in enumerate(groups):
        progress.update(done)
        length = min(window, n_pred - group[0])
        x = torch.stack([ids[s : s + length] for s in group]).to(device)
        y = torch.stack([ids[s + 1 : s + length + 1] for s in group]).to(device)
        logits = model(input_ids=x).logits.float()
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        total_nll += nll.item()
        total_tok += y.numel()
    mean = total_nll / total_tok
    return PerplexityResult(math.exp(mean), mean, total_tok)


def unigram_perplexity(
    train_ids, test_ids, vocab_size: int, smoothing: float = 1.0
) -> PerplexityResult:
    """Perplexity of an add-k (default add-one) smoothed unigram model of the same
    tokenizer: the baseline a language model must beat. Scores test_ids[1:], the same
    tokens `perplexity` scores."""
    train = np.asarray(train_ids, dtype=np.int64).ravel()
    test = np.asarray(test_ids, dtype=np.int64).ravel()[1:]
    if test.size == 0:
        raise ValueError("unigram_perplexity needs at least 2 test tokens")
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + smoothing
    logp = np.log(counts) - np.log(counts.sum())
    mean = float(-logp[test].mean())
    return PerplexityResult(math.exp(mean), mean, int(test.size))


@dataclass
class Generation:
    text: str  # the new text only (prompt excluded, eos excluded)
    token_ids: list[int]  # the new token ids (eos excluded)
    stopped: bool  # True if generation ended at eos, False if it hit max_new_tokens


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> list[Generation]:
    """Continue each prompt with transformers' `generate` (KV cache on).

    temperature 0 is greedy; > 0 samples (with nucleus `top_p`), seeded by `seed`.
    Batches are left-padded (the attention mask keeps pads out, positions start at the
    first real token), so greedy output does not depend on the batch size.
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature!r}: must be >= 0 (0 = greedy)")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r}: must be in (0, 1]")
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    sample = temperature > 0
    kwargs = (
        dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        if sample
        else dict(do_sample=False)
    )
    gen = torch.Generator().manual_seed(seed)
    out: list[Generation] = []
    try:
        progress = Progress("generate, prompts", len(prompts))
        for i in range(0, len(prompts), batch_size):
            progress.update(i)
            chunk = list(prompts[i : i + batch_size])
            enc = tokenizer(chunk, return_tensors="pt", padding=True).to(device)
            if sample:
                # One seed per batch derived from `seed`, so a run is reproducible.
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            seqs = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos,
                pad_token_id=pad,
                use_cache=True,
                **kwargs,
            )
            new = seqs[:, enc["input_ids"].shape[1] :].tolist()
            for ids in new:
                stopped = eos in ids
                if stopped:
                    ids = ids[: ids.index(eos)]
                out.append(
                    Generation(tokenizer.decode(ids, skip_special_tokens=True), ids, stopped)
                )
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return out


def reasoning_accuracy(
    model,
    tokenizer,
    problems,
    max_new_tokens: int = 160,
    batch_size: int = 32,
    return_generations: bool = False,
):
    """Greedy accuracy on `problems` (reasoning.Problem), per difficulty and overall.

    Returns a DataFrame with columns steps, n, correct, accuracy: one row per
    difficulty and a last row with steps='all'. With return_generations, also returns
    the per-problem generations and correctness.
    """
    import pandas as pd

    from celine.llm.reasoning import answers_match, format_prompt

    prompts = [format_prompt(p) for p in problems]
    gens = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        batch_size=batch_size,
    )
    rows = [
        {"steps": p.steps, "correct": bool(answers_match(g.text, p.answer))}
        for p, g in zip(problems, gens, strict=True)
    ]
    df = pd.DataFrame(rows, columns=["steps", "correct"])
    table = df.groupby("steps").agg(n=("correct", "size"), correct=("correct", "sum")).reset_index()
    table["correct"] = table["correct"].astype(int)
    overall = pd.DataFrame([{"steps": "all", "n": len(df), "correct": int(df["correct"].sum())}])
    table = pd.concat([table.astype({"steps": object}), overall], ignore_index=True)
    table["accuracy"] = table["correct"] / table["n"].clip(lower=1)
    if return_generations:
        return table, gens, df["correct"].tolist()
    return table
