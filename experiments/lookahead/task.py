"""The lookahead task: a prompt set, the greedy reference decoded in the same process, and the
measurements every decoder gets (compression, tokens/s, speedup, exactness)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

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


def score(
    out: DecodeOutput, wall_s: float, ref: DecodeOutput, ref_wall_s: float, greedy: bool = True
) -> dict:
    """The run's metrics, with greedy decoding (or plain sampling, `greedy=False`) of the same
    prompts as the reference. Under sampling outputs are draws, so exact match is not reported
    (the distribution is tested in tests/experiments/lookahead/test_sampling.py)."""
    tokens, steps = out.total_tokens, max(out.total_steps, 1)
    verify = sum(out.verify_steps)
    accepted_verify = [
        a
        for acc, v in zip(out.accepted, out.verify_steps, strict=True)
        for a in acc[len(acc) - v :]
        if v
    ]
    tps, ref_tps = tokens / wall_s, ref.total_tokens / ref_wall_s
    ref_name = "greedy" if greedy else "sampling"
    metrics = {
        "decode/compression_ratio": tokens / steps,
        "decode/tokens_per_s": tps,
        "decode/speedup": tps / ref_tps,
        "decode/accepted_per_step": (
            sum(accepted_verify) / len(accepted_verify) if accepted_verify else tokens / steps
        ),
        "decode/pool_hit_rate": sum(out.pool_hits) / verify if verify else 0.0,
        "decode/tokens": float(tokens),
        "decode/steps": float(steps),
        "decode/wall_s": wall_s,
        f"{ref_name}/tokens_per_s": ref_tps,
        f"{ref_name}/wall_s": ref_wall_s,
        f"{ref_name}/compression_ratio": ref.total_tokens / max(ref.total_steps, 1),
    }
    if greedy:
        same = sum(a == b for a, b in zip(out.tokens, ref.tokens, strict=True))
        metrics["decode/exact_match"] = same / len(ref.tokens)
    return metrics


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


def special_tokens(model, tok) -> dict:
    """eos / pad ids from the tokenizer, or from the model's config when there is none."""
    if tok is not None:
        return dict(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    pad = model.generation_config.pad_token_id
    return dict(eos_token_id=eos, pad_token_id=pad if pad is not None else eos)


class LookaheadTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx

    @property
    def sampling(self):
        """The task's sampling warping, or None for greedy decoding (temperature 0)."""
        from celine.experiments.lookahead.decoding import Sampling

        c = self.cfg
        if c.temperature == 0:
            return None
        return Sampling(temperature=c.temperature, top_k=c.top_k, top_p=c.top_p)

    def prompts_are_ids(self) -> bool:
        from celine.experiments.lookahead import workloads

        return bool(self.cfg.prompts) and workloads.prompt_file(self.cfg.prompts)[0] is not None

    def load_model(self):
        """The run's model; a `model=hf` checkpoint without tokenizer files is accepted when
        the prompts are token ids. `attn_implementation` switches attention (e.g. eager)."""
        ctx = self.ctx
        if ctx.model_name == "hf" and self.prompts_are_ids():
            from types import SimpleNamespace

            from celine.llm.hf import load_local_causal_lm

            model, tok = load_local_causal_lm(
                ctx.model_cfg.path, ctx.hardware.device, ctx.hardware.dtype,
                require_tokenizer=False,
            )  # fmt: skip
            lm = SimpleNamespace(model=model, tokenizer=tok)
        else:
            lm = ctx.build_model()
        if self.cfg.attn_implementation:
            lm.model.set_attn_implementation(self.cfg.attn_implementation)
        return lm

    def prompts(self, tokenizer) -> list[list[int]]:
        from celine.experiments.lookahead import workloads

        c, seed = self.cfg, self.ctx.seed
        if c.prompts:
            ids, texts = workloads.prompt_file(c.prompts)
            if ids is None:
                if tokenizer is None:
                    from celine.api import ConfigError

                    raise ConfigError(
                        "task.prompts", c.prompts, "token ids (the checkpoint has no tokenizer)"
                    )
                ids = [tokenizer(t)["input_ids"] for t in texts]
            return [p[-c.prompt_tokens :] for p in ids[: c.num_prompts]]
        if c.workload == "code":
            return workloads.code_prompts(tokenizer, c.num_prompts, c.prompt_tokens, seed)
        if c.workload == "reasoning":
            return workloads.reasoning_prompts(tokenizer, c.num_prompts, c.prompt_tokens, seed)
        return workloads.jsonl_prompts(tokenizer, c.data_root, c.num_prompts, c.prompt_tokens)

    def compare(self, lm, decode: Decoder, label: str):
        """Decode the prompts greedily (the reference; plain sampling when the task samples)
        and with `decode`, both timed in this
        process after an untimed warm-up; returns (prompts, output, wall_s, ref, ref_wall_s)."""
        from celine.experiments.lookahead.baselines import greedy, plain_sampling

        reference = greedy
        if self.sampling is not None:  # the reference is plain sampling, same warping
            reference = partial(plain_sampling, sampling=self.sampling, seed=self.ctx.seed)

        model, tok, c = lm.model, lm.tokenizer, self.cfg
        model.eval()
        prompts = self.prompts(tok)
        kw = special_tokens(model, tok)
        log = self.ctx.log
        log.info(
            "%d %s prompts (%d-%d tokens), %d new tokens each, batch %d",
            len(prompts), c.prompts or c.workload, min(map(len, prompts)), max(map(len, prompts)),
            c.max_new_tokens, c.batch_size,
        )  # fmt: skip
        if c.warmup:
            timed(
                model, lambda: reference(model, prompts[:1], max_new_tokens=4, batch_size=1, **kw)
            )
            timed(model, lambda: decode(model, prompts[:1], max_new_tokens=4, batch_size=1, **kw))
        n, bs = c.max_new_tokens, c.batch_size
        ref, ref_wall = timed(
            model, lambda: reference(model, prompts, max_new_tokens=n, batch_size=bs, **kw)
        )
        log.info("reference: %d tokens in %.2f s", ref.total_tokens, ref_wall)
        out, wall = timed(
            model, lambda: decode(model, prompts, max_new_tokens=n, batch_size=bs, **kw)
        )
        log.info(
            "%s: %d tokens in %d steps, %.2f s", label, out.total_tokens, out.total_steps, wall
        )
        return prompts, out, wall, ref, ref_wall
