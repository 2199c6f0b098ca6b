"""A plain classifier training loop (nanoGPT-like), with progress, checkpoints and resumption,
plus evaluation helpers and a config key for caching trained models."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from celine.errors import ConfigError
from celine.vision.datasets import ImageSet

OPTIMIZERS = ("sgd", "adam")


def config_key(spec: dict[str, Any]) -> str:
    """A short stable hash of everything that changes a trained model (for cache folders)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _say(log: Any, msg: str) -> None:
    if log is None:
        return
    if isinstance(log, logging.Logger) or hasattr(log, "info"):
        log.info(msg)
    else:
        log(msg)


def train_classifier(
    model: nn.Module,
    train: ImageSet,
    val: ImageSet | None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float = 5e-4,
    optimizer: str = "sgd",
    seed: int = 0,
    device: str = "cpu",
    log: Any = None,
    checkpoint: Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train `model` with cross-entropy; returns one history row per epoch (epoch, train_loss,
    train_acc, val_acc). SGD uses momentum 0.9 and Nesterov; both optimisers follow a cosine
    schedule over all steps.

    With `checkpoint`, the state is saved after every epoch and a rerun resumes from it; a
    finished checkpoint is loaded without training (its history is returned, marked
    `cached`)."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError("optimizer", optimizer, "expected one of " + ", ".join(OPTIMIZERS))
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ConfigError("epochs/batch_size/lr", (epochs, batch_size, lr), "expected >= 0/1/>0")
    model.to(device)
    if optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * steps_per_epoch))
    history: list[dict] = []
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start = state["history"], state["epoch"]
        if start >= epochs:
            _say(log, f"loaded the trained classifier from {checkpoint} ({start} epochs)")
            model.eval()
            return [{**row, "cached": True} for row in history]
        _say(log, f"resuming from {checkpoint} at epoch {start}/{epochs}")
    t0 = time.perf_counter()
    for epoch in range(start, epochs):
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        # a generator per epoch: a resumed run sees the same batches as an uninterrupted one
        for x, y in train.loader(batch_size, shuffle=True, seed=seed * 100_003 + epoch):
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(1, total),
            "train_acc": correct / max(1, total),
            "val_acc": evaluate(model, val, device) if val is not None and len(val) else math.nan,
        }
        history.append(row)
        _say(
            log,
            f"epoch {epoch + 1}/{epochs}  loss {row['train_loss']:.4f}  "
            f"train_acc {row['train_acc']:.3f}  val_acc {row['val_acc']:.3f}  "
            f"({time.perf_counter() - t0:.1f}s)",
        )
        if on_epoch is not None:
            on_epoch(row)
        if checkpoint is not None:
            _save(checkpoint, model, opt, sched, history, epoch + 1)
    model.eval()
    return history


def _save(path: Path, model, opt, sched, history, epoch) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "history": history,
            "epoch": epoch,
        },
        tmp,
    )
    tmp.replace(path)  # atomic: an interrupted save never leaves a half-written checkpoint


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, device: str = "cpu", batch_size: int = 512) -> Tensor:
    """Logits for every image of `x` (on the CPU), in eval mode."""
    was_training = model.training
    model.eval()
    out = [model(chunk.to(device)).float().cpu() for chunk in x.split(batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def embed(model: nn.Module, x: Tensor, device: str = "cpu", batch_size: int = 512) -> Tensor:
    """The penultimate representation `model.features(x)` for every image (on the CPU)."""
    was_training = model.training
    model.eval()
    out = [model.features(chunk.to(device)).float().cpu() for chunk in x.split(batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def evaluate(model: nn.Module, data: ImageSet, device: str = "cpu", batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on `data`."""
    if len(data) == 0:
        return math.nan
    logits = predict(model, data.x, device, batch_size)
    return float((logits.argmax(1) == data.y).float().mean())
