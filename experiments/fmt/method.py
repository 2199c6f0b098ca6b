"""The defences of the fmt task: FMT itself and its baselines (none, fine-tuning alone, random
pruning + fine-tuning, Fine-Pruning, Neural Attention Distillation). Each one starts from the same
cached backdoored model, chooses maps to prune (FMT: by its feature-map attack score), prunes them
and fine-tunes (NAD: distils) on the clean subset; every stage is measured (clean acc, ASR, RA)."""

from __future__ import annotations

import time

import pandas as pd

from celine.api import Result, RunContext
from celine.vision.featuremaps import MapMask, conv_layers, prune_maps

from .defense import (
    fine_tune,
    fmt_scores,
    kmeans_minority,
    lowest_per_layer,
    mean_activation,
    random_per_layer,
)
from .nad import nad
from .plots import stage_bars

_DEFENCE_METRICS = ("asr", "ra")


def missing_if_not_backdoored(metrics: dict, min_asr: float) -> dict[str, str]:
    """A defence of a model that was never backdoored removes nothing: its ASR / RA after the
    defence are reported missing with the reason (and taken out of `metrics`)."""
    before = metrics["before/asr"]
    if before >= min_asr:
        return {}
    reason = f"the model is not backdoored (ASR before the defence {before:.2f} < {min_asr:g})"
    for key in _DEFENCE_METRICS:
        metrics.pop(key, None)
    return dict.fromkeys(_DEFENCE_METRICS, reason)


class _Defense:
    """Backdoored model -> choose maps -> prune -> fine-tune, measured after each stage."""

    prunes = True
    finetunes = True

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def choose(self, ctx: RunContext, model, clean) -> tuple[dict[str, list[int]], dict]:
        return {}, {}

    def train_clean(self, ctx: RunContext, model, clean) -> None:
        """The last stage: fine-tuning on the clean subset (NAD replaces it by distillation)."""
        cfg = self.cfg
        fine_tune(
            model, clean.x, clean.y, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr,
            momentum=cfg.finetune_momentum, weight_decay=cfg.finetune_weight_decay,
            batch_size=cfg.finetune_batch_size, eta_min=cfg.finetune_eta_min, seed=ctx.seed,
            device=ctx.hardware.device,
            log=lambda e, loss: ctx.log_metrics({"finetune/loss": loss}, step=e),
        )  # fmt: skip

    def run(self, ctx: RunContext) -> Result:
        task, cfg = ctx.task, self.cfg
        model = task.backdoored_model()
        stages = {"backdoored": task.evaluate(model)}
        ctx.log.info("backdoored model: %s", _fmt(stages["backdoored"]))
        truth, tac = task.backdoor_maps(model)
        clean = task.clean_subset()
        t0 = time.perf_counter()
        plan, info = self.choose(ctx, model, clean) if self.prunes else ({}, {})
        detect_s = time.perf_counter() - t0
        if self.prunes:
            if getattr(cfg, "keep_mask", False):
                MapMask(model, plan)  # stays on the model through fine-tuning and evaluation
            else:
                prune_maps(model, plan)
            stages["pruned"] = task.evaluate(model)
            ctx.log.info("pruned %d maps: %s", _count(plan), _fmt(stages["pruned"]))
        if self.finetunes:
            self.train_clean(ctx, model, clean)
            stages["fine-tuned"] = task.evaluate(model)
            ctx.log.info("after fine-tuning on %d clean images: %s", len(clean), _fmt(stages["fine-tuned"]))  # fmt: skip
        final = stages[list(stages)[-1]]
        metrics = dict(final)
        for k, v in stages["backdoored"].items():
            metrics[f"before/{k}"] = v
        if "pruned" in stages:
            for k, v in stages["pruned"].items():
                metrics[f"pruned/{k}"] = v
        n_truth = sum(len(v) for v in truth.values())
        hit = sum(len(set(plan.get(k, [])) & set(v)) for k, v in truth.items())
        metrics["val_acc"] = task.val_accuracy(model)
        metrics["backdoor_maps_removed"] = hit / n_truth if n_truth else 0.0
        metrics["maps_pruned"] = float(_count(plan))
        metrics["detect_s"] = detect_s
        metrics["clean_images"] = float(len(clean))
        metrics.update({f"info/{k}": float(v) for k, v in info.get("metrics", {}).items()})
        table = pd.DataFrame([{"stage": s, **m} for s, m in stages.items()])
        layers = pd.DataFrame(
            [
                {
                    "layer": name,
                    "maps": len(tac[name]),
                    "pruned": " ".join(map(str, plan.get(name, []))),
                    "ground_truth": " ".join(map(str, truth[name])),
                    "hits": len(set(plan.get(name, [])) & set(truth[name])),
                }
                for name in tac
            ]
        )
        tables = {"stages": table, "layers": layers, **info.get("tables", {})}
        defended = self.prunes or self.finetunes  # fmt_none describes the model, defends nothing
        missing = missing_if_not_backdoored(metrics, task.cfg.min_backdoor_asr) if defended else {}
        for reason in set(missing.values()):
            ctx.log.warning("%s: asr and ra reported missing", reason)
        return Result(
            metrics=metrics,
            missing=missing,
            tables=tables,
            figures={"stages": stage_bars(table, title=type(self).__name__)},
            notes={"attack": task.cfg.attack, "plan": repr(plan)},
        )


class NoDefense(_Defense):
    """The backdoored model as it is: the attack's own metrics."""

    prunes = False
    finetunes = False


class FineTuneOnly(_Defense):
    prunes = False


class RandomPrune(_Defense):
    def choose(self, ctx, model, clean):
        return random_per_layer(model, self.cfg.prune_ratio, ctx.seed), {}


class FMT(_Defense):
    """FMT/FMP: attack every map, score the model on the attacked inputs, prune the lowest."""

    def choose(self, ctx, model, clean):
        cfg = self.cfg
        n = min(cfg.attack_samples, len(clean))
        x, y = clean.x[:n].to(ctx.hardware.device), clean.y[:n].to(ctx.hardware.device)
        total = len(conv_layers(model))
        scores = fmt_scores(
            model, x, y, eps=cfg.eps, alpha=cfg.alpha, steps=cfg.steps,
            random_start=cfg.random_start, score=cfg.score, seed=ctx.seed,
            map_attack=cfg.map_attack,
            progress=lambda name, i, _n: ctx.log.info("FMT scored layer %s (%d/%d)", name, i, total),
        )  # fmt: skip
        if cfg.selection == "kmeans":
            plan = kmeans_minority(scores, seed=ctx.seed)
        else:
            plan = lowest_per_layer(scores, cfg.prune_ratio)
        rows = [
            {"layer": name, "map": i, "score": float(v)}
            for name, s in scores.items()
            for i, v in enumerate(s)
        ]
        return plan, {"tables": {"map_scores": pd.DataFrame(rows)}}


class FinePruning(_Defense):
    """Fine-Pruning: the last conv stage's least active output channels on clean data (after the
    residual add, `last_stage`), pruned one by one while clean accuracy (on the defender's clean
    subset) stays within `acc_drop`, then fine-tuned with them masked."""

    def choose(self, ctx, model, clean):
        import torch

        from .defense import last_stage

        cfg = self.cfg
        layer = last_stage(model)
        x, y = clean.x.to(ctx.hardware.device), clean.y.to(ctx.hardware.device)
        order = mean_activation(model, x, layer).argsort().tolist()

        def acc_with(chans):
            with MapMask(model, {layer: chans}), torch.no_grad():
                return float((model(x).argmax(1) == y).float().mean())

        base = acc_with([])
        limit = int(cfg.max_ratio * len(order))
        chosen: list[int] = []
        for c in order[:limit]:
            if base - acc_with([*chosen, c]) > cfg.acc_drop:
                break
            chosen.append(c)
        return {layer: sorted(chosen)}, {"metrics": {"fp_clean_acc_before": base}}


def _count(plan) -> int:
    return sum(len(v) for v in plan.values())


def _fmt(m: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in m.items())


class NAD(_Defense):
    """Neural Attention Distillation: no pruning; the fine-tuning stage is replaced by attention
    distillation from a fine-tuned copy (the teacher) of the backdoored model."""

    prunes = False

    def train_clean(self, ctx, model, clean) -> None:
        cfg = self.cfg
        kwargs = dict(
            epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, momentum=cfg.finetune_momentum,
            weight_decay=cfg.finetune_weight_decay, batch_size=cfg.finetune_batch_size,
            eta_min=cfg.finetune_eta_min,
        )  # fmt: skip
        _, layers = nad(
            model, clean.x, clean.y, betas=(cfg.beta1, cfg.beta2, cfg.beta3), p=cfg.p,
            teacher_epochs=cfg.te_epochs, fine_tune=fine_tune, finetune_kwargs=kwargs,
            seed=ctx.seed, device=ctx.hardware.device,
            log=lambda e, loss: ctx.log_metrics({"nad/loss": loss}, step=e),
        )  # fmt: skip
        ctx.log.info("NAD distilled the attention of %s", ", ".join(layers))


class Oracle(_Defense):
    """Upper bound, not a defence: prunes the ground-truth backdoor maps (those the real trigger
    changes most), as many per layer as `prune_ratio` gives, then the same fine-tuning."""

    def choose(self, ctx, model, clean):
        from .defense import prune_count

        _, tac = ctx.task.backdoor_maps(model)
        return {
            name: s.argsort(descending=True)[: prune_count(len(s), self.cfg.prune_ratio)].tolist()
            for name, s in tac.items()
        }, {}
