"""ka2er and its baselines: med_feature_avg, med_joint, med_expert."""

from __future__ import annotations

import time

import pandas as pd
import torch

from celine.api import Result, RunContext

from .evaluate import (
    amalgamated_predictor,
    predict,
    results_figure,
    segmentation_scores,
    softmax_predictor,
)
from .train import get_experts, train_amalgamated, train_joint


def _curve_logger(ctx: RunContext, name: str):
    def log(step: int, loss: float) -> None:
        ctx.log_metrics({name: loss}, step=step)

    return log


def _experts(ctx: RunContext, expert_cfg):
    task = ctx.task
    return get_experts(
        task.tasks, ctx.task_cfg, expert_cfg, task.expert_cache(expert_cfg),
        ctx.hardware.device, ctx.seed, ctx.log,
    )  # fmt: skip


class KA2ER:
    """Frozen experts + SwinUNETR target, merged by the amalgamation layer, decoded with prompts.
    `fusion=average` is the feature-averaging baseline, `fusion=none` the no-expert ablation."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        from .model import AmalgamatedSegmenter, count

        cfg, device = self.cfg, ctx.hardware.device
        tasks = ctx.task.tasks
        experts, expert_info = ([], [])
        if cfg.fusion != "none":
            experts, expert_info = _experts(ctx, ctx.task_cfg.expert)
        # seeded after the experts, which consume the global generator only when they are
        # trained (not when loaded from the cache): the target's initial weights, and so the
        # run, then depend on the seed alone
        torch.manual_seed(ctx.seed)
        target = ctx.build_model()
        model = AmalgamatedSegmenter(target, experts, cfg, ctx.task_cfg.spatial_dims).to(device)
        before = [p.detach().clone() for p in model.experts.parameters()]
        started = time.time()
        fit = train_amalgamated(
            model, tasks, cfg, device, ctx.seed, ctx.log, _curve_logger(ctx, "train/loss")
        )
        train_time = time.time() - started
        frozen = all(
            torch.equal(a, b.detach())
            for a, b in zip(before, model.experts.parameters(), strict=True)
        )
        metrics, table, fig = ctx.task.evaluate(
            lambda t: amalgamated_predictor(model, t.test_y, cfg.prompt),
            f"{cfg.name} ({cfg.fusion}, prompt={cfg.prompt})",
        )
        metrics.update(
            {
                "train/time_s": train_time,
                "train/final_loss": fit["final_loss"],
                "model/trainable_params": float(count(model.trainable_parameters())),
                "experts/frozen": float(frozen),
            }
        )
        tables = {"per_task": table}
        if experts:  # the reference each task is held to: its own expert, same test images
            own = []
            for task, net in zip(tasks, experts, strict=True):
                pred = predict(softmax_predictor(net), task.test_x, device)
                own.append(segmentation_scores(pred, task.test_y)["dice"])
                metrics[f"expert_dice/{task.name}"] = own[-1]
            table["expert_dice"] = own
            metrics["expert_dice/mean"] = float(sum(own) / len(own))
        if expert_info:
            tables["experts"] = pd.DataFrame(expert_info)
            weights = self._expert_weights(model, tasks, device)
            tables["expert_weights"] = weights
            own = [weights.loc[i, t.name] for i, t in enumerate(tasks)]
            metrics["alpha/own_expert"] = float(sum(own) / len(own))
        return Result(
            metrics=metrics,
            tables=tables,
            figures={"examples": fig, "dice_per_task": results_figure(table, cfg.name)},
        )

    @torch.no_grad()
    def _expert_weights(self, model, tasks, device) -> pd.DataFrame:
        """Mean weight alpha_k the layer gives expert k on each task's test inputs: where the
        attention across experts routes (level 3)."""
        rows = []
        for task in tasks:
            fn = amalgamated_predictor(model, task.test_y, self.cfg.prompt)
            alphas = []

            def grab(x, idx, fn=fn, alphas=alphas):
                hidden = model.target.swinViT(x, model.target.normalize)
                feats = [e(x) for e in model.experts]
                _, alpha = model.amalgamation(hidden[model.stage], feats)
                alphas.append(alpha.mean(1).cpu())
                return torch.zeros(len(x), 1)

            predict(grab, task.test_x, device)
            mean = torch.cat(alphas).mean(0)
            rows.append(
                {"inputs": task.name, **{t.name: float(mean[k]) for k, t in enumerate(tasks)}}
            )
        return pd.DataFrame(rows)


class MedJoint:
    """SwinUNETR (its own UNETR decoder) trained on the union of all tasks, no experts."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        torch.manual_seed(ctx.seed)
        net = ctx.build_model().to(ctx.hardware.device)
        started = time.time()
        fit = train_joint(
            net, ctx.task.tasks, self.cfg, ctx.hardware.device, ctx.seed, ctx.log,
            _curve_logger(ctx, "train/loss"),
        )  # fmt: skip
        train_time = time.time() - started
        metrics, table, fig = ctx.task.evaluate(lambda t: softmax_predictor(net), "med_joint")
        metrics.update(
            {
                "train/time_s": train_time,
                "train/final_loss": fit["final_loss"],
                "model/trainable_params": float(sum(p.numel() for p in net.parameters())),
            }
        )
        return Result(
            metrics=metrics,
            tables={"per_task": table},
            figures={"examples": fig, "dice_per_task": results_figure(table, "med_joint")},
        )


class MedExpert:
    """Each expert on its own task (the upper reference KA2ER is held to), plus every expert on
    every task: the domain-shift matrix that makes amalgamation necessary."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        tasks, device = ctx.task.tasks, ctx.hardware.device
        started = time.time()
        experts, info = _experts(ctx, ctx.model_cfg)
        own = {t.name: e for t, e in zip(tasks, experts, strict=True)}
        metrics, table, fig = ctx.task.evaluate(
            lambda t: softmax_predictor(own[t.name]), "med_expert (each on its own task)"
        )
        cross = []
        for expert_task, net in zip(tasks, experts, strict=True):
            row = {"expert": expert_task.name}
            for task in tasks:
                pred = predict(softmax_predictor(net), task.test_x, device)
                row[task.name] = segmentation_scores(pred, task.test_y)["dice"]
            cross.append(row)
        cross = pd.DataFrame(cross)
        off = [cross.loc[i, t.name] for i in range(len(tasks)) for t in tasks if t is not tasks[i]]
        if off:
            metrics["dice/off_task_mean"] = float(sum(off) / len(off))
        metrics["experts/time_s"] = time.time() - started
        return Result(
            metrics=metrics,
            tables={"per_task": table, "cross_task_dice": cross, "experts": pd.DataFrame(info)},
            figures={"examples": fig, "dice_per_task": results_figure(table, "med_expert")},
        )
