"""pretrain, evaluate and unigram: the methods of lm_pretrain."""

from __future__ import annotations

import pandas as pd

from celine.api import Result, RunContext


def _learning_curves(history: list[dict]):
    """Training loss and validation perplexity against step, from the checkpoint's history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, metric in ((left, "train/loss"), (right, "val/perplexity")):
        rows = frame[frame["metric"] == metric]
        ax.plot(rows["step"], rows["value"], marker="." if metric.startswith("val") else None)
        ax.set_xlabel("step")
        ax.set_title(metric)
    right.set_yscale("log")
    fig.tight_layout()
    return fig


class Pretrain:
    """Train the tiny Llama the model group describes (or reuse the cached one), then evaluate."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        lm = ctx.build_model()
        history = lm.history
        notes = {"checkpoint": str(lm.path)}
        if not lm.trained_now:
            # a cached model: show the curves it was trained with, so the run is complete
            notes["cached"] = (
                "true: the model was trained earlier; curves re-logged from its history"
            )
            ctx.log.info("using the cached checkpoint %s (trained earlier)", lm.path)
            for row in history:
                ctx.tracker.log_metrics({row["metric"]: row["value"]}, step=row["step"])
        metrics, tables = ctx.task.evaluate(lm)
        final = lm.meta.get("final_metrics", {})
        metrics["train/final_loss"] = float(final.get("train/loss", float("nan")))
        metrics["train/wall_time_s"] = float(lm.meta.get("wall_time_s", float("nan")))
        metrics["model/params"] = float(sum(p.numel() for p in lm.model.parameters()))
        figures = {"learning_curves": _learning_curves(history)} if history else {}
        if history:
            tables["history"] = pd.DataFrame(history)
        return Result(metrics=metrics, tables=tables, figures=figures, notes=notes)


class Evaluate:
    """Measure any causal LM on the task's corpus without training it."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        lm = ctx.build_model()
        metrics, tables = ctx.task.evaluate(lm)
        metrics["model/params"] = float(sum(p.numel() for p in lm.model.parameters()))
        return Result(metrics=metrics, tables=tables, notes={"checkpoint": str(lm.path)})


class Unigram:
    """The baseline: add-k smoothed token frequencies of the training split, same tokenizer."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        tokenizer = _tokenizer(ctx)
        metrics = ctx.task.unigram(tokenizer, self.cfg.smoothing)
        metrics["test/unigram_perplexity"] = metrics["test/perplexity"]
        metrics["tokenizer/vocab_size"] = float(len(tokenizer))
        return Result(metrics=metrics)


def _tokenizer(ctx: RunContext):
    from celine.llm import builders

    if ctx.model_name == "hf":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(ctx.model_cfg.path, local_files_only=True)
    return builders.tiny_llama_tokenizer(ctx.model_cfg, ctx)
