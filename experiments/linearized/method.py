"""lin_softmax, lin_local, lin_global, lin_augmented: one pipeline, the variant by name.

1. Load the trained tiny Llama (softmax attention) and score it (the reference perplexity).
2. Swap every layer's attention for the variant (lin_softmax keeps softmax) and fine-tune.
3. Train Medusa heads on the frozen result and a truncated copy as a draft model.
4. Decode test prompts greedily: autoregressive (the baseline), Medusa tree speculation and
   draft-model speculation, all through the recurrent state; check they emit the same tokens.
5. Per-token decode latency and state memory against context length.
"""

from __future__ import annotations

import pandas as pd
import torch

from celine.api import Result, RunContext

from .decoding import MedusaDraft, MedusaHeads, ModelDraft, generate
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
        metrics["finetune/final_loss"] = last
        res = task.perplexity(model.eval(), tok, seq_len)
        metrics.update(res)
        ppl_rows.append({"stage": "finetuned", **res})
        ctx.log.info("%s fine-tuned: test perplexity %.3f", cfg.name, res["test/perplexity"])
        alphas = [a.global_factor.item() for a in (layer.self_attn for layer in model.model.layers)]
        metrics["attention/mean_global_factor"] = sum(alphas) / len(alphas)

        decoders = {"autoregressive": None}
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
            decoders["medusa"] = MedusaDraft(heads, cfg.tree_size, cfg.tree_topk)
        if 0 < cfg.draft_layers < model.config.num_hidden_layers:
            draft = truncated_draft(model, cfg.draft_layers)
            for p in draft.parameters():
                p.requires_grad_(True)
            ctx.log.info(
                "training the %d-layer draft model (%d steps)", cfg.draft_layers, cfg.draft_steps
            )
            metrics["draft/final_loss"] = train_draft(draft, train, cfg, seq_len, ctx.seed, on_log)
            decoders["draft_model"] = ModelDraft(draft, cfg.draft_gamma)

        decode_rows, identical = self._decode(ctx, model, tok, decoders)
        decode = pd.DataFrame(decode_rows)
        summary = decode.groupby("drafter").agg(
            tokens=("tokens", "sum"), seconds=("seconds", "sum"), steps=("steps", "sum")
        )
        base = summary.loc["autoregressive"]
        metrics["decode/ar_tokens_per_s"] = base.tokens / base.seconds
        for name, row in summary.iterrows():
            if name == "autoregressive":
                continue
            metrics[f"decode/{name}_tokens_per_s"] = row.tokens / row.seconds
            metrics[f"decode/{name}_speedup"] = (row.tokens / row.seconds) / (
                base.tokens / base.seconds
            )
            metrics[f"decode/{name}_mean_accepted"] = row.tokens / row.steps
        metrics["decode/spec_equals_greedy"] = float(identical)

        ctx.log.info("decode latency vs context %s", list(task.cfg.latency_contexts))
        latency = pd.DataFrame(
            decode_latency(
                model, list(task.cfg.latency_contexts), task.cfg.latency_steps, len(tok), ctx.seed
            )
        )
        for row in latency.itertuples():
            metrics[f"latency/ms_per_token_ctx{row.context}"] = row.ms_per_token
            metrics[f"latency/state_mib_ctx{row.context}"] = row.state_bytes / 2**20
        first, last_row = latency.iloc[0], latency.iloc[-1]
        metrics["latency/growth_last_over_first"] = last_row.ms_per_token / first.ms_per_token
        latency.insert(0, "variant", cfg.variant)
        return Result(
            metrics=metrics,
            tables={
                "perplexity": pd.DataFrame(ppl_rows).assign(method=cfg.name),
                "decoding": decode,
                "latency": latency,
            },
            figures={"latency_vs_context": _latency_figure(latency, cfg.variant)},
            notes={"checkpoint": str(lm.path), "variant": cfg.variant},
        )

    def _decode(self, ctx, model, tok, decoders):
        rows, identical = [], True
        prompts = ctx.task.prompts(tok)
        n_new = ctx.task.cfg.new_tokens
        for i, prompt in enumerate(prompts):
            reference = None
            for name, drafter in decoders.items():
                torch.manual_seed(ctx.seed)
                stats = generate(model, prompt, n_new, drafter)
                if reference is None:
                    reference = stats.tokens
                same = stats.tokens == reference
                identical &= same
                rows.append(
                    {
                        "prompt": i,
                        "drafter": name,
                        "tokens": len(stats.tokens),
                        "steps": stats.steps,
                        "seconds": stats.seconds,
                        "mean_accepted": stats.mean_accepted,
                        "tokens_per_s": stats.tokens_per_s,
                        "same_as_autoregressive": same,
                    }
                )
            ctx.log.info(
                "prompt %d: %s",
                i,
                ", ".join(
                    f"{r['drafter']} {r['mean_accepted']:.2f} tok/step"
                    for r in rows[-len(decoders) :]
                ),
            )
        return rows, identical
