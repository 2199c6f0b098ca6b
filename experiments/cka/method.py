"""cka and its baselines: the concatenated teachers, vanilla knowledge amalgamation (KD on the
concatenated soft targets), CFL-style common feature learning and the supervised student.

Every student method shares one training loop (student.py) and one evaluation, so that a
comparison is the objective alone."""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from celine.api import Result, RunContext

from . import losses
from .heads import CommonFeatureBlock, CommonSpace
from .plots import curves_plot, representation_plot
from .student import Batch, train_student
from .task import Union


class CKAObjective:
    """L = lambda_kd L_kd + lambda_intra L_intra + lambda_inter L_inter + lambda_align L_align,
    all driven by the teachers' outputs: the pseudo-label of an image is the argmax of the
    teachers' concatenated logits."""

    def __init__(self, cfg, space: CommonSpace, union: Union) -> None:
        self.cfg, self.space, self.union = cfg, space, union

    def __call__(self, b: Batch) -> tuple[Tensor, dict[str, float]]:
        c = self.cfg
        z = torch.cat(b.teacher_logits, dim=1)
        pseudo = z.argmax(1)
        kd = losses.soft_target_kd(b.student_logits, z, c.T)
        hs = self.space.student(b.student_features)
        hts = [head(f) for head, f in zip(self.space.teachers, b.teacher_features, strict=True)]
        intra = losses.intra_model_contrastive(hs, pseudo, c.tau)
        if c.teacher_intra:
            intra = intra + _mean([losses.intra_model_contrastive(h, pseudo, c.tau) for h in hts])
        owner = self.union.task_of(pseudo.cpu()).to(pseudo.device)
        inter = _mean(
            [
                losses.inter_model_contrastive(
                    hs, h, pseudo, c.tau, anchors=(owner == k) if c.inter_pairs == "owner" else None
                )
                for k, h in enumerate(hts)
            ]
        )
        align = _mean([losses.sample_alignment(h, hs, c.tau_align) for h in hts])
        loss = (
            c.lambda_kd * kd
            + c.lambda_intra * intra
            + c.lambda_inter * inter
            + c.lambda_align * align
        )
        parts = {
            "kd": kd.item(),
            "intra": intra.item(),
            "inter": inter.item(),
            "align": align.item(),
        }
        return loss, parts


def _mean(values: list[Tensor]) -> Tensor:
    return torch.stack(values).mean()


class KDObjective:
    """Vanilla knowledge amalgamation: KD on the teachers' concatenated soft targets."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def __call__(self, b: Batch) -> tuple[Tensor, dict[str, float]]:
        kd = losses.soft_target_kd(b.student_logits, torch.cat(b.teacher_logits, 1), self.cfg.T)
        return kd, {"kd": kd.item()}


class CFLObjective:
    """CFL: KD + multi-kernel MMD between the student's and each teacher's code in the common
    feature space + reconstruction of each teacher's features from its code."""

    def __init__(self, cfg, block: CommonFeatureBlock) -> None:
        self.cfg, self.block = cfg, block

    def __call__(self, b: Batch) -> tuple[Tensor, dict[str, float]]:
        c = self.cfg
        kd = losses.soft_target_kd(b.student_logits, torch.cat(b.teacher_logits, 1), c.T)
        hs, hts, recon = self.block(b.student_features, b.teacher_features)
        mmd = sum(losses.multi_kernel_mmd(hs, h, c.sigmas) for h in hts)
        rec = sum(F.mse_loss(r, f) for r, f in zip(recon, b.teacher_features, strict=True))
        loss = c.lambda_kd * kd + c.lambda_mmd * mmd + c.lambda_recon * rec
        return loss, {"kd": kd.item(), "mmd": mmd.item(), "recon": rec.item()}


class SupervisedObjective:
    """Upper bound: cross-entropy on the ground-truth union labels (the only objective that
    reads labels; it holds them itself)."""

    def __init__(self, labels: Tensor) -> None:
        self.labels = labels

    def __call__(self, b: Batch) -> tuple[Tensor, dict[str, float]]:
        ce = F.cross_entropy(b.student_logits, self.labels[b.idx].to(b.student_logits.device))
        return ce, {"ce": ce.item()}


def _student_result(ctx: RunContext, cfg, make_objective) -> Result:
    """Build the student (and the method's heads), train it with `make_objective(student,
    train)` -> (objective, heads), and measure it beside the teachers, under the task's fixed
    thread count (teachers are trained on first use, inside it too)."""
    with ctx.task.fixed_threads():
        return _train_and_measure(ctx, cfg, make_objective)


def _train_and_measure(ctx: RunContext, cfg, make_objective) -> Result:
    task = ctx.task
    train, val, test = task.data()
    teacher_logits, teacher_feats = task.teacher_outputs(train.x)
    torch.manual_seed(ctx.seed)
    student = task.build_student()
    objective, heads = make_objective(student, train, [f.shape[1] for f in teacher_feats])
    device = ctx.hardware.device
    val_curve: list[tuple[int, float]] = []

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        metrics = {f"train/{k}": v for k, v in row.items() if k != "epoch"}
        if len(val):
            from celine.vision.train import evaluate

            # labels of the validation split are read for this curve only, never for training
            val_curve.append((epoch, evaluate(student, val, device)))
            student.train()
            metrics["val/union_acc"] = val_curve[-1][1]
        ctx.log_metrics(metrics, step=epoch)

    ctx.log.info(
        "training the %s student (%d params) on %d unlabeled images",
        cfg.name, sum(p.numel() for p in student.parameters()), len(train),
    )  # fmt: skip
    history = train_student(
        student, heads, objective, train.x, teacher_logits, teacher_feats,
        epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay,
        head_lr_scale=cfg.head_lr_scale, seed=ctx.seed, device=device, log=ctx.log,
        on_epoch=on_epoch,
    )  # fmt: skip
    from celine.vision.train import embed, predict

    logits = predict(student, test.x, device)
    features = embed(student, test.x, device)
    result = _measure(ctx, logits, test)
    result.metrics["student/params"] = float(sum(p.numel() for p in student.parameters()))
    result.tables["history"] = pd.DataFrame(history)
    result.figures["curves"] = curves_plot(history, val_curve)
    result.figures["representation"] = _representation(ctx, features, test, cfg.name)
    return result


def _measure(ctx: RunContext, union_logits: Tensor, test) -> Result:
    task = ctx.task
    metrics = {f"test/{k}": v for k, v in task.scores(union_logits, test.y).items()}
    metrics.update(task.teacher_scores(test))
    concat = torch.cat(task.teacher_outputs(test.x)[0], dim=1)
    metrics["reference/concat_teachers_union_acc"] = task.scores(concat, test.y)["union_acc"]
    rows = [{"model": "student", **{k[5:]: v for k, v in metrics.items() if k.startswith("test/")}}]
    for k in range(len(task.union.classes)):
        rows.append(
            {
                "model": f"teacher{k}",
                "union_acc": metrics[f"teacher{k}/union_acc"],
                f"task{k}_acc": metrics[f"teacher{k}/task_acc"],
            }
        )
    rows.append({"model": "concat_teachers", **task.scores(concat, test.y)})
    return Result(metrics=metrics, tables={"accuracy": pd.DataFrame(rows)})


def _representation(ctx: RunContext, features: Tensor, test, name: str):
    n = min(len(test), ctx.task_cfg.plot_points)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:n]
    return representation_plot(
        features[pick].numpy(), test.y[pick].numpy(), ctx.task.union_class_names(),
        ctx.task_cfg.plot, f"{name}: student representation (test, {ctx.task_cfg.plot})",
        seed=ctx.seed,
    )  # fmt: skip


class CKA:
    """Contrastive knowledge amalgamation: projection heads put the student and every teacher
    into one common space; intra- and inter-model contrast, sample-level alignment and
    soft-target amalgamation train the student without labels."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        cfg = self.cfg

        def make(student: nn.Module, train, teacher_dims: list[int]):
            space = CommonSpace(student.feature_dim, teacher_dims, cfg.proj_hidden, cfg.proj_dim)
            return CKAObjective(cfg, space, ctx.task.union), space

        return _student_result(ctx, cfg, make)


class VanillaKA:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        return _student_result(ctx, self.cfg, lambda s, train, dims: (KDObjective(self.cfg), None))


class CFL:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        cfg = self.cfg

        def make(student: nn.Module, train, teacher_dims: list[int]):
            hidden = cfg.hidden or max(2, student.feature_dim // 4)
            block = CommonFeatureBlock(student.feature_dim, teacher_dims, hidden)
            return CFLObjective(cfg, block), block

        return _student_result(ctx, cfg, make)


class Supervised:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        return _student_result(
            ctx, self.cfg, lambda s, train, dims: (SupervisedObjective(train.y), None)
        )


class ConcatTeachers:
    """Reference without a student: predict the argmax of the teachers' concatenated logits."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        with ctx.task.fixed_threads():
            _, _, test = ctx.task.data()
            logits, feats = ctx.task.teacher_outputs(test.x)
            result = _measure(ctx, torch.cat(logits, 1), test)
            result.figures["representation"] = _representation(
                ctx, torch.cat(feats, 1), test, "concatenated teachers"
            )
        return result
