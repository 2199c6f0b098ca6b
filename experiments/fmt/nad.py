"""Neural Attention Distillation (Li et al., ICLR 2021), a baseline of the fmt task: fine-tune a
copy of the backdoored model on the clean subset (the teacher), then train the backdoored model
(the student) on the same data with cross-entropy plus, per chosen stage, beta times the MSE
between the student's and the teacher's attention maps (BackdoorBench's `AT` loss)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from celine.vision.featuremaps import FeatureMaps, conv_layers


def attention_map(fm: Tensor, p: float, eps: float = 1e-6) -> Tensor:
    """Sum over channels of |F|^p, divided by its spatial L2 norm: [N, C, H, W] -> [N, 1, H, W]."""
    am = fm.abs().pow(p).sum(1, keepdim=True)
    return am / (am.flatten(2).norm(dim=2)[..., None, None] + eps)


def attention_loss(fm_student: Tensor, fm_teacher: Tensor, p: float) -> Tensor:
    return F.mse_loss(attention_map(fm_student, p), attention_map(fm_teacher, p))


def attention_layers(model: nn.Module, count: int = 3) -> list[str]:
    """The stages NAD distils: the last `count` residual stages (`layer1`..`layer4`, as
    BackdoorBench's PreAct-ResNet-18 uses layer2..layer4), else the last `count` conv layers."""
    stages = [f"layer{i}" for i in range(1, 5) if hasattr(model, f"layer{i}")]
    names = stages or list(conv_layers(model))
    return names[-count:]


def nad(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    betas: Sequence[float],
    p: float,
    teacher_epochs: int,
    fine_tune: Callable[..., list[float]],
    finetune_kwargs: dict,
    seed: int,
    device: str = "cpu",
    log: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, list[str]]:
    """Distil the fine-tuned teacher's attention into the backdoored `model` in place; returns
    (teacher, layers). `betas` weigh the last len(betas) stages from the first to the last."""
    teacher = copy.deepcopy(model)
    fine_tune(teacher, x, y, **{**finetune_kwargs, "epochs": teacher_epochs}, seed=seed,
              device=device)  # fmt: skip
    teacher.eval()
    layers = attention_layers(model, len(betas))
    betas = list(betas)[-len(layers) :]
    kw = finetune_kwargs
    epochs = kw["epochs"]
    opt = torch.optim.SGD(model.parameters(), lr=kw["lr"], momentum=kw["momentum"],
                          weight_decay=kw["weight_decay"])  # fmt: skip
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs),
                                                       eta_min=kw["eta_min"])  # fmt: skip
    g = torch.Generator().manual_seed(70_001 + seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), kw["batch_size"]):
            idx = perm[i : i + kw["batch_size"]]
            if len(idx) < 2 <= len(x):  # BatchNorm needs two samples in train mode
                continue
            xb, yb = x[idx].to(device), y[idx].to(device)
            with torch.no_grad(), FeatureMaps(teacher, layers, detach=True) as ft:
                teacher(xb)
            with FeatureMaps(model, layers) as fs:
                logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            for beta, name in zip(betas, layers, strict=True):
                loss = loss + beta * attention_loss(fs[name], ft[name], p)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if log is not None:
            log(epoch + 1, total / len(x))
    model.eval()
    return teacher, layers
