"""lin_softmax, lin_local, lin_global, lin_augmented: one pipeline, the variant by name.

1. Load the trained tiny Llama (softmax attention) and score it (the reference perplexity).
2. Swap every layer's attention for the variant (lin_softmax keeps softmax) and fine-tune.
3. Train Medusa heads on the frozen result and a truncated copy as a draft model.
4. Decode test prompts greedily: autoregressive (the baseline), Medusa tree speculation (a
   tree from the heads' measured accuracy, and one from a geometric prior) and draft-model
   speculation, all through the recurrent state, in batches of `task.decode_batch`, timed
   after a warm-up over `task.decode_repeats` repeats; every drafter's output on a sample of
   prompts is checked against greedy decoding by full recomputation.
5. Per-token decode latency and state memory against context length.
"""

from __future__ import annotations

import statistics

import pandas as pd

from celine.api import Result, RunContext

from .decoding import (
    MedusaDraft,
    MedusaHeads,
    ModelDraft,
    generate_batch,
    greedy_reference,
    head_accuracy,
)
from .finetune import finetune, train_draft, train_medusa, truncated_draft
from .latency import decode_latency
from .linear_llama import linearize


def _latency_figure(table: pd.DataFrame, variant: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(table["context"], table["ms_per_token"], marker="o")
    left.set(
        xscale="log",
        xlabel="context (tokens)",
        ylabel="ms / token",
        title=f"decode latency ({variant})",
    )
    right.plot(table["context"], table["state_bytes"] / 2**20, marker="o")
    right.set(xscale="log", xlabel="context (tokens)", ylabel="MiB", title="decoding state")
    fig.tight_layout()
    return fig


class Linearized:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        cfg, task = self.cfg, ctx.task
        lm = ctx.build_model()
        model, tok = lm.model.float(), lm.tokenizer  # fine-tune and decode in fp32
        seq_len = cfg.seq_len or lm.seq_len or 256
        train = task.streams(tok)["train"]
        metrics: dict[str, float] = {}
        ppl_rows = []

        def on_log(step: int, values: dict) -> None:
            ctx.log_metrics(values, step=step)

        def score(stage: str) -> None:
            model.eval()
            res = task.perplexity(model, tok, seq_len)
            ppl_rows.append({"stage": stage, **res})
            ctx.log.info("%s: test perplexity %.3f", stage, res["test/perplexity"])
            for k, v in res.items():
                metrics[f"{stage}/{k.replace('/', '_')}"] = v

        score("original")
        linearize(model, cfg.variant, cfg.group_size, cfg.conv_kernel, cfg.global_factor_init)
        if cfg.variant != "softmax":
            score("linearized_init")
        ctx.log.info("fine-tuning (%s, %d steps)", cfg.finetune, cfg.steps)
        model, last = finetune(model, train, cfg, seq_len, ctx.seed, on_log)
        if cfg.steps:  # method.steps=0 (allowed: decode the swapped model as is) logs no loss
            metrics["finetune/final_loss"] = last
        res = task.perplexity(model.eval(), tok, seq_len)
        metrics.update(res)
        ppl_rows.append({"stage": "finetuned", **res})
        ctx.log.info("%s fine-tuned: test perplexity %.3f", cfg.name, res["test/perplexity"])
        alphas = [a.global_factor.item() for a in (layer.self_attn for layer in model.model.layers)]
        metrics["attention/mean_global_factor"] = sum(alphas) / len(alphas)

        decoders = {"autoregressive": None}
        tables_extra: dict[str, pd.DataFrame] = {}
        if cfg.medusa_num_heads and cfg.tree_size:
            for p in model.parameters():
                p.requires_grad_(False)
            heads = MedusaHeads(model.config.hidden_size, model.lm_head, cfg.medusa_num_heads)
            heads = heads.to(model.lm_head.weight.device)
            ctx.log.info(
                "training %d Medusa heads (%d steps)", cfg.medusa_num_heads, cfg.medusa_steps
            )
            metrics["medusa/final_loss"] = train_medusa(
                model, heads, train, cfg, seq_len, ctx.seed, on_log
            )
            val = task.streams(tok)["validation"]
            accuracy = head_accuracy(model, heads, val, seq_len, cfg.tree_topk)
            for i, row in enumerate(accuracy):
                metrics[f"medusa/head{i}_top1_accuracy"] = row[0]
                metrics[f"medusa/head{i}_topk_accuracy"] = sum(row)
            tables_extra["medusa_accuracy"] = (
                pd.DataFrame(accuracy, columns=[f"rank{r}" for r in range(cfg.tree_topk)])
                .rename_axis("head")
                .reset_index()
            )
            # the Medusa paper's tree (from measured accuracy) beside the prior-based one
            decoders["medusa"] = MedusaDraft(heads, cfg.tree_size, cfg.tree_topk, accuracy)
            decoders["medusa_prior"] = MedusaDraft(heads, cfg.tree_size, cfg.tree_topk)
        if 0 < cfg.draft_layers < model.config.num_hidden_layers:
            draft = truncated_draft(model, cfg.draft_layers)
            for p in draft.parameters():
                p.requires_grad_(True)
            ctx.log.info(
                "training the %d-layer draft model (%d steps)", cfg.draft_layers, cfg.draft_steps
            )
            metrics["draft/final_loss"] = train_draft(draft, train, cfg, seq_len, ctx.seed, on_log)
            decoders["draft_model"] = ModelDraft(draft, cfg.draft_gamma)

        decode, timing = self._decode(ctx, model, tok, decoders)
        metrics.update(decode_metrics(decode, timing))

        ctx.log.info("decode latency vs context %s", list(task.cfg.latency_contexts))
        latency = pd.DataFrame(
            decode_latency(
                model, list(task.cfg.latency_contexts), task.cfg.latency_steps, len(tok), ctx.seed
            )
        )
        for row in latency.itertuples():
            metrics[f"latency/ms_per_token_ctx{row.context}"] = row.ms_per_token
            metrics[f"latency/state_mib_ctx{row.context}"] = row.state_bytes / 2**20
        # growth from the second context on: the first still carries start-up cost
        # (allocator, first-touch of kernels) even after the untimed warm-up
        ref = latency.iloc[1] if len(latency) >= 3 else latency.iloc[0]
        metrics["latency/growth_last_over_second"] = (
            latency.iloc[-1].ms_per_token / ref.ms_per_token
        )
        latency.insert(0, "variant", cfg.variant)
        return Result(
            metrics=metrics,
            tables={
                "perplexity": pd.DataFrame(ppl_rows).assign(method=cfg.name),
                "decoding": decode,
                "decode_timing": timing,
                "latency": latency,
                **tables_extra,
            },
            figures={"latency_vs_context": _latency_figure(latency, cfg.variant)},
            notes={"checkpoint": str(lm.path), "variant": cfg.variant},
        )

    def _decode(self, ctx, model, tok, decoders):
        """Per-prompt rows (tokens, steps, exactness) and per-(drafter, repeat) timings."""
        c = ctx.task.cfg
        prompts = ctx.task.prompts(tok)
        n_new, bs = c.new_tokens, c.decode_batch
        checked = range(min(c.exact_prompts, len(prompts)))
        ctx.log.info("full-recompute greedy reference on %d prompts", len(checked))
        oracle = {i: greedy_reference(model, prompts[i], n_new) for i in checked}
        rows, timing, first = [], [], {}
        for name, drafter in decoders.items():
            generate_batch(model, prompts[: min(bs, len(prompts))], min(4, n_new), drafter)
            for repeat in range(c.decode_repeats):
                tokens = seconds = 0.0
                for start in range(0, len(prompts), bs):
                    stats = generate_batch(model, prompts[start : start + bs], n_new, drafter)
                    tokens += sum(len(s.tokens) for s in stats)
                    seconds += stats[0].seconds  # the batch's wall time
                    if repeat:
                        continue
                    for i, st in enumerate(stats, start=start):
                        first.setdefault(i, st.tokens)
                        rows.append({
                            "prompt": i, "drafter": name, "tokens": len(st.tokens),
                            "steps": st.steps, "mean_accepted": st.mean_accepted,
                            "same_as_autoregressive": st.tokens == first[i],
                            "equals_full_recompute": (
                                st.tokens == oracle[i] if i in oracle else None
                            ),
                        })  # fmt: skip
                timing.append(
                    {"drafter": name, "repeat": repeat, "tokens": tokens, "seconds": seconds,
                     "tokens_per_s": tokens / max(seconds, 1e-9)}
                )  # fmt: skip
            done = [r for r in rows if r["drafter"] == name]
            ctx.log.info(
                "%s: %.2f tok/step, %.1f tok/s (median of %d)", name,
                sum(r["tokens"] for r in done) / sum(r["steps"] for r in done),
                statistics.median(t["tokens_per_s"] for t in timing if t["drafter"] == name),
                c.decode_repeats,
            )  # fmt: skip
        return pd.DataFrame(rows), pd.DataFrame(timing)


def decode_metrics(decode: pd.DataFrame, timing: pd.DataFrame) -> dict[str, float]:
    """Median tokens/s over repeats with its min and max, speed-up of the medians over
    autoregressive decoding, tokens per step, and exactness against the full recompute."""
    out: dict[str, float] = {}
    tps = timing.groupby("drafter")["tokens_per_s"]
    med, lo, hi = tps.median(), tps.min(), tps.max()
    base = med["autoregressive"]
    for name in med.index:
        prefix = "decode/ar" if name == "autoregressive" else f"decode/{name}"
        out[f"{prefix}_tokens_per_s"] = med[name]
        out[f"{prefix}_tokens_per_s_min"] = lo[name]
        out[f"{prefix}_tokens_per_s_max"] = hi[name]
        if name != "autoregressive":
            rows = decode[decode.drafter == name]
            out[f"decode/{name}_speedup"] = med[name] / base
            out[f"decode/{name}_mean_accepted"] = rows.tokens.sum() / rows.steps.sum()
    checked = decode.dropna(subset=["equals_full_recompute"])
    # the fraction of (checked prompt, drafter) pairs whose output equals the full recompute
    out["decode/spec_equals_greedy"] = (
        float(checked.equals_full_recompute.astype(bool).mean()) if len(checked) else float("nan")
    )
    out["decode/same_as_autoregressive"] = float(decode.same_as_autoregressive.mean())
    return out
