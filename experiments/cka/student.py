"""The student's training loop, shared by every student method so that they differ only in
their objective. The loop sees the training images and the frozen teachers' outputs on them,
never a label: an objective that needs labels (the supervised upper bound) carries its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Batch:
    idx: Tensor  # positions in the training set
    x: Tensor
    teacher_logits: list[Tensor]
    teacher_features: list[Tensor]
    student_features: Tensor
    student_logits: Tensor


# objective(batch) -> (loss, named parts for the log)
Objective = Callable[[Batch], tuple[Tensor, dict[str, float]]]


def train_student(
    student: nn.Module,
    heads: nn.Module | None,
    objective: Objective,
    x: Tensor,
    teacher_logits: list[Tensor],
    teacher_features: list[Tensor],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    head_lr_scale: float,
    seed: int,
    device: str,
    log=None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict]:
    """Adam with a cosine schedule; batches of `x` drawn by a generator seeded with `seed`;
    the last incomplete batch is dropped (the contrastive losses need several samples).
    Returns one row of mean loss parts per epoch."""
    student.to(device).train()
    groups = [{"params": list(student.parameters()), "lr": lr}]
    if heads is not None:
        heads.to(device).train()
        groups.append({"params": list(heads.parameters()), "lr": lr * head_lr_scale})
    opt = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    n = len(x)
    batch_size = min(batch_size, n)
    steps = n // batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * steps))
    generator = torch.Generator().manual_seed(seed)
    history, t0 = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        sums: dict[str, float] = {}
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb = x[idx].to(device)
            feats = student.features(xb)
            batch = Batch(
                idx=idx,
                x=xb,
                teacher_logits=[z[idx].to(device) for z in teacher_logits],
                teacher_features=[f[idx].to(device) for f in teacher_features],
                student_features=feats,
                student_logits=student.classifier(feats),
            )
            loss, parts = objective(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite student loss at epoch {epoch}: {parts}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for key, value in {"loss": loss.item(), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
        row = {key: value / max(1, steps) for key, value in sums.items()}
        row["epoch"] = epoch
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
        if log is not None and (epoch == 1 or epoch % 10 == 0 or epoch == epochs):
            parts_text = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch")
            log.info(
                f"student epoch {epoch}/{epochs}  {parts_text}  ({time.perf_counter() - t0:.1f}s)"
            )
    student.eval()
    if heads is not None:
        heads.eval()
    return history
