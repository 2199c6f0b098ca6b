"""lookahead, jacobi, prompt_lookup and greedy: every method decodes the task's prompts and is
measured against greedy decoding of the same prompts in the same process."""

from __future__ import annotations

from functools import partial

from celine.api import ConfigError, Result, RunContext
from celine.experiments.lookahead import baselines
from celine.experiments.lookahead.decoding import lookahead_generate
from celine.experiments.lookahead.plots import accepted_histogram
from celine.experiments.lookahead.task import per_prompt_table, score


def _measure(ctx: RunContext, decode, label: str, notes: dict | None = None) -> Result:
    lm = ctx.task.load_model()
    prompts, out, wall, ref, ref_wall = ctx.task.compare(lm, decode, label)
    greedy = ctx.task.sampling is None
    metrics = score(out, wall, ref, ref_wall, greedy=greedy)
    ctx.log_metrics(metrics)
    if greedy and metrics["decode/exact_match"] < 1.0:
        ctx.log.warning("%s differs from greedy on some prompts (see table per_prompt)", label)
    tables = {"per_prompt": per_prompt_table(prompts, out, ref)}
    figures = {}
    if any(out.accepted):
        figures["accepted_tokens"] = accepted_histogram(out.accepted, label)
    return Result(metrics=metrics, tables=tables, figures=figures, notes=notes or {})


class Lookahead:
    """Lookahead decoding: 2-D Jacobi window, n-gram pool, verification, one forward per step."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        c = self.cfg
        decode = partial(
            _lookahead, level=c.level, window=c.window, guess_set_size=c.guess_set_size,
            pool_from_prompt=c.pool_from_prompt, seed=ctx.seed, sampling=ctx.task.sampling,
        )  # fmt: skip
        label = f"lookahead N={c.level} W={c.window} G={c.guess_set_size}"
        per_step = (c.window + c.guess_set_size) * (c.level - 1)
        return _measure(ctx, decode, label, {"tokens_per_step_input": str(per_step)})


class Jacobi:
    """Jacobi decoding: W-1 guesses refined in parallel, no n-gram pool."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        if ctx.task.sampling is not None:
            raise ConfigError(
                "task.temperature", ctx.task.cfg.temperature, "0 for method=jacobi",
                "Jacobi decoding's fixed point is the greedy output",
            )  # fmt: skip
        decode = partial(_lookahead, level=2, window=self.cfg.window, guess_set_size=0,
                         jacobi=True, seed=ctx.seed)  # fmt: skip
        return _measure(ctx, decode, f"jacobi W={self.cfg.window}")


class PromptLookup:
    """transformers' prompt-lookup decoding (drafts copied from the prompt, verified)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        c = self.cfg

        def decode(model, prompts, *, batch_size=1, **kw):
            return baselines.prompt_lookup(
                model, prompts, prompt_lookup_num_tokens=c.prompt_lookup_num_tokens,
                max_matching_ngram_size=c.max_matching_ngram_size, sampling=ctx.task.sampling,
                **kw,
            )  # fmt: skip

        return _measure(ctx, decode, f"prompt_lookup k={c.prompt_lookup_num_tokens}")


class Greedy:
    """Plain greedy `generate`, timed a second time against the reference run."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        sampling = ctx.task.sampling
        if sampling is None:
            return _measure(ctx, baselines.greedy, "greedy")
        decode = partial(baselines.plain_sampling, sampling=sampling, seed=ctx.seed + 1)
        return _measure(ctx, decode, "sampling")


def _lookahead(model, prompts, *, max_new_tokens, eos_token_id, pad_token_id=None, **kw):
    return lookahead_generate(
        model, prompts, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id, **kw
    )
