"""ka2er and its baselines: med_feature_avg, med_joint, med_expert."""

from __future__ import annotations

import time

import pandas as pd
import torch

from celine.api import Result, RunContext

from .evaluate import (
    amalgamated_predictor,
    expert_source,
    label_source,
    predict,
    results_figure,
    segmentation_scores,
    softmax_predictor,
)
from .threshold import threshold_predictor
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
        prompts_from_experts = cfg.prompt != "none" and cfg.eval_prompt == "expert"
        if cfg.fusion != "none" or prompts_from_experts:
            experts, expert_info = _experts(ctx, ctx.task_cfg.expert)
        own_expert = {t.name: e for t, e in zip(tasks, experts, strict=False)}
        # fusion=none: the experts only draw the test prompts; the model never sees them
        experts_in_model = [] if cfg.fusion == "none" else experts
        # seeded after the experts, which consume the global generator only when they are
        # trained (not when loaded from the cache): the target's initial weights, and so the
        # run, then depend on the seed alone
        torch.manual_seed(ctx.seed)
        target = ctx.build_model()
        model = AmalgamatedSegmenter(target, experts_in_model, cfg, ctx.task_cfg.spatial_dims).to(
            device
        )
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

        def source(t, kind):
            if cfg.prompt == "none":  # no prompt: nothing to draw it from
                return None
            return expert_source(own_expert[t.name]) if kind == "expert" else label_source(t.test_y)

        metrics, table, fig = ctx.task.evaluate(
            lambda t: amalgamated_predictor(model, cfg.prompt, source(t, cfg.eval_prompt)),
            f"{cfg.name} ({cfg.fusion}, prompt={cfg.prompt} from {cfg.eval_prompt})",
        )
        if cfg.prompt != "none" and cfg.eval_prompt != "label":
            # the MedSAM protocol's number beside it, labelled: prompts from the ground truth
            for t in tasks:
                pred = predict(
                    amalgamated_predictor(model, cfg.prompt, label_source(t.test_y)), t.test_x,
                    device, roi=ctx.task.roi,
                )  # fmt: skip
                metrics[f"dice_label_prompt/{t.name}"] = segmentation_scores(pred, t.test_y)["dice"]
            label_dice = [metrics[f"dice_label_prompt/{t.name}"] for t in tasks]
            metrics["dice_label_prompt/mean"] = float(sum(label_dice) / len(label_dice))
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
                pred = predict(softmax_predictor(net), task.test_x, device, roi=ctx.task.roi)
                own.append(segmentation_scores(pred, task.test_y)["dice"])
                metrics[f"expert_dice/{task.name}"] = own[-1]
            table["expert_dice"] = own
            metrics["expert_dice/mean"] = float(sum(own) / len(own))
        if expert_info:
            tables["experts"] = pd.DataFrame(expert_info)
        if experts_in_model:
            weights = self._expert_weights(model, tasks, device, ctx.task.roi)
            tables["expert_weights"] = weights
            own = [weights.loc[i, t.name] for i, t in enumerate(tasks)]
            metrics["alpha/own_expert"] = float(sum(own) / len(own))
        return Result(
            metrics=metrics,
            tables=tables,
            figures={"examples": fig, "dice_per_task": results_figure(table, cfg.name)},
        )

    @torch.no_grad()
    def _expert_weights(self, model, tasks, device, roi) -> pd.DataFrame:
        """Mean weight alpha_k the layer gives expert k on each task's test inputs: where the
        attention across experts routes (level 3)."""
        rows = []
        for task in tasks:
            alphas = []

            def grab(x, idx, window=None, alphas=alphas):
                hidden = model.target.swinViT(x, model.target.normalize)
                feats = [e(x) for e in model.experts]
                _, alpha = model.amalgamation(hidden[model.stage], feats)
                alphas.append(alpha.mean(1).cpu())
                return torch.zeros(len(x), 1, *x.shape[2:])

            predict(grab, task.test_x, device, roi=roi)
            mean = torch.cat(alphas).mean(0)
            rows.append(
                {"inputs": task.name, **{t.name: float(mean[k]) for k, t in enumerate(tasks)}}
            )
        return pd.DataFrame(rows)


class MedThreshold:
    """Sanity baseline: one intensity threshold and side per task, fitted on the training pixels.
    A benchmark it solves measures nothing about amalgamation."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        metrics, table, fig = ctx.task.evaluate(
            lambda t: threshold_predictor(t, self.cfg.candidates), "med_threshold"
        )
        return Result(
            metrics=metrics,
            tables={"per_task": table},
            figures={"examples": fig, "dice_per_task": results_figure(table, "med_threshold")},
        )


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
                pred = predict(softmax_predictor(net), task.test_x, device, roi=ctx.task.roi)
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
