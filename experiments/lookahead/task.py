"""The lookahead task: a prompt set, the greedy reference decoded in the same process, and the
measurements every decoder gets (compression, tokens/s, speedup, exactness)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from celine.experiments.lookahead.decoding import DecodeOutput

Decoder = Callable[..., DecodeOutput]  # (model, prompts, max_new_tokens=, eos_token_id=, ...)


def _sync(model) -> None:
    import torch

    if next(model.parameters()).is_cuda:
        torch.cuda.synchronize()


def timed(model, fn: Callable[[], DecodeOutput]) -> tuple[DecodeOutput, float]:
    """Wall time of `fn()` with the device synchronised before and after. Every decoder runs
    under the same SDPA kernels as lookahead (no cuDNN attention), so that greedy is not timed
    under a different attention backend than the method it is compared with."""
    from celine.experiments.lookahead.decoding import no_cudnn_attention

    with no_cudnn_attention():
        _sync(model)
        start = time.perf_counter()
        out = fn()
        _sync(model)
        return out, time.perf_counter() - start


def score(out: DecodeOutput, wall_s: float, ref: DecodeOutput, ref_wall_s: float) -> dict:
    """The run's metrics, with greedy decoding of the same prompts as the reference."""
    tokens, steps = out.total_tokens, max(out.total_steps, 1)
    verify = sum(out.verify_steps)
    accepted_verify = [
        a
        for acc, v in zip(out.accepted, out.verify_steps, strict=True)
        for a in acc[len(acc) - v :]
        if v
    ]
    tps, ref_tps = tokens / wall_s, ref.total_tokens / ref_wall_s
    return {
        "decode/compression_ratio": tokens / steps,
        "decode/tokens_per_s": tps,
        "decode/speedup": tps / ref_tps,
        "decode/exact_match": sum(a == b for a, b in zip(out.tokens, ref.tokens, strict=True))
        / len(ref.tokens),
        "decode/accepted_per_step": (
            sum(accepted_verify) / len(accepted_verify) if accepted_verify else tokens / steps
        ),
        "decode/pool_hit_rate": sum(out.pool_hits) / verify if verify else 0.0,
        "decode/tokens": float(tokens),
        "decode/steps": float(steps),
        "decode/wall_s": wall_s,
        "greedy/tokens_per_s": ref_tps,
        "greedy/wall_s": ref_wall_s,
    }


def per_prompt_table(prompts, out: DecodeOutput, ref: DecodeOutput) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt": range(len(prompts)),
            "prompt_tokens": [len(p) for p in prompts],
            "new_tokens": [len(t) for t in out.tokens],
            "steps": out.steps,
            "compression_ratio": [
                len(t) / max(s, 1) for t, s in zip(out.tokens, out.steps, strict=True)
            ],
            "exact_match": [a == b for a, b in zip(out.tokens, ref.tokens, strict=True)],
            "pool_hits": out.pool_hits,
        }
    )


class LookaheadTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx

    def prompts(self, tokenizer) -> list[list[int]]:
        from celine.experiments.lookahead import workloads

        c, seed = self.cfg, self.ctx.seed
        if c.workload == "code":
            return workloads.code_prompts(tokenizer, c.num_prompts, c.prompt_tokens, seed)
        if c.workload == "reasoning":
            return workloads.reasoning_prompts(tokenizer, c.num_prompts, c.prompt_tokens, seed)
        return workloads.jsonl_prompts(tokenizer, c.data_root, c.num_prompts, c.prompt_tokens)

    def compare(self, lm, decode: Decoder, label: str):
        """Decode the prompts greedily (the reference) and with `decode`, both timed in this
        process after an untimed warm-up; returns (prompts, output, wall_s, ref, ref_wall_s)."""
        from celine.experiments.lookahead.baselines import greedy

        model, tok, c = lm.model, lm.tokenizer, self.cfg
        model.eval()
        prompts = self.prompts(tok)
        kw = dict(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        log = self.ctx.log
        log.info(
            "%d %s prompts (%d-%d tokens), %d new tokens each, batch %d",
            len(prompts), c.workload, min(map(len, prompts)), max(map(len, prompts)),
            c.max_new_tokens, c.batch_size,
        )  # fmt: skip
        if c.warmup:
            timed(model, lambda: greedy(model, prompts[:1], max_new_tokens=4, batch_size=1, **kw))
            timed(model, lambda: decode(model, prompts[:1], max_new_tokens=4, batch_size=1, **kw))
        n, bs = c.max_new_tokens, c.batch_size
        ref, ref_wall = timed(
            model, lambda: greedy(model, prompts, max_new_tokens=n, batch_size=bs, **kw)
        )
        log.info("greedy reference: %d tokens in %.2f s", ref.total_tokens, ref_wall)
        out, wall = timed(
            model, lambda: decode(model, prompts, max_new_tokens=n, batch_size=bs, **kw)
        )
        log.info(
            "%s: %d tokens in %d steps, %.2f s", label, out.total_tokens, out.total_steps, wall
        )
        return prompts, out, wall, ref, ref_wall
