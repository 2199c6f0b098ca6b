"""One plain minibatch loop for every gradient-trained factorization model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import TrainConfig
from .data import Ratings
from .metrics import rmse


@dataclass
class Fit:
    history: list[dict] = field(default_factory=list)
    stopped_epoch: int = 0
    best_epoch: int = 0  # the epoch whose weights were restored


def tensors(data: Ratings, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(data.user, device=device),
        torch.as_tensor(data.item, device=device),
        torch.as_tensor(data.rating, device=device),
    )


@torch.no_grad()
def predict(model, data: Ratings, device: str, batch: int = 65536) -> np.ndarray:
    model.eval()
    u, i, _ = tensors(data, device)
    out = [model(u[s : s + batch], i[s : s + batch]) for s in range(0, len(data), batch)]
    pred = torch.cat(out).cpu().numpy() if out else np.zeros(0)
    return np.clip(pred, *data.scale)


def fit(
    model,
    train: Ratings,
    val: Ratings,
    cfg: TrainConfig,
    *,
    device: str,
    seed: int,
    optimizer: str = "adam",
    before_epoch: Callable[[int], None] | None = None,
    after_epoch: Callable[[int, dict], None] | None = None,
    log=None,
) -> Fit:
    """Minimise MSE + reg * L2(touched rows) + the model's own terms; stop when validation
    RMSE has not improved for `patience` epochs and restore the best epoch's weights.

    A change of the model's buffers (MFDMC's live-cluster mask, changed by a discarding pass
    in `after_epoch`) starts a new best from that epoch, so a restore never brings a
    discarded cluster back: the restored state always has the final mask."""
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = (
        torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    )
    u, i, r = tensors(train, device)
    result, best, stale = Fit(), float("inf"), 0
    best_state = _snapshot(model)
    for epoch in range(cfg.epochs):
        if before_epoch:
            before_epoch(epoch)
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=gen).to(device)
        total = 0.0
        for s in range(0, len(train), cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            pred = model(u[b], i[b])
            mse = torch.mean((pred - r[b]) ** 2)
            loss = mse + cfg.reg * model.penalty(u[b], i[b]) + model.extra_loss(u[b], i[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += mse.item() * len(b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        row = {
            "epoch": epoch + 1,
            "time/epoch_s": time.perf_counter() - started,
            "train/rmse": (total / len(train)) ** 0.5,
            "val/rmse": rmse(predict(model, val, device), val.rating),
        }
        if after_epoch:
            after_epoch(epoch, row)
        result.history.append(row)
        if log and (epoch + 1) % 10 == 0:
            log.info(
                "epoch %d/%d  train rmse %.4f  val rmse %.4f",
                epoch + 1,
                cfg.epochs,
                row["train/rmse"],
                row["val/rmse"],
            )
        result.stopped_epoch = epoch + 1
        if _buffers_changed(model, best_state) or row["val/rmse"] < best - 1e-4:
            best, stale, best_state = row["val/rmse"], 0, _snapshot(model)
            result.best_epoch = epoch + 1
        else:
            stale += 1
            if stale >= cfg.patience:
                if log:
                    log.info("early stop at epoch %d (best val rmse %.4f)", epoch + 1, best)
                break
    model.load_state_dict(best_state)
    return result


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _buffers_changed(model, state: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(b, state[name]) for name, b in model.named_buffers())
