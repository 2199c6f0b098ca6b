"""Dice (MONAI DiceMetric) and HD95 (MONAI HausdorffDistanceMetric, percentile 95) per task, and a
figure of image, label and prediction per task."""

from __future__ import annotations

import math

import numpy as np
import torch

from .data import boxes_from_masks


@torch.no_grad()
def predict(fn, x: torch.Tensor, device, batch_size: int = 8) -> torch.Tensor:
    """Binary masks (N, 1, *S) from `fn(x_batch, index) -> foreground probability or mask`."""
    out = []
    for i in range(0, len(x), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(x)))
        out.append(fn(x[idx].to(device), idx).float().cpu())
    return torch.cat(out)


def segmentation_scores(pred: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
    """Mean Dice and HD95 over the images that have foreground. An empty prediction where there
    is foreground has no Hausdorff distance; it gets the image diagonal (the worst possible)."""
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    keep = label.flatten(1).sum(1) > 0
    pred, label = pred[keep] > 0.5, label[keep] > 0.5
    if len(label) == 0:
        return {"dice": float("nan"), "hd95": float("nan")}
    dice = DiceMetric(include_background=True, reduction="none")(pred, label)
    hd = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(
        pred, label
    )
    diagonal = math.sqrt(sum(s * s for s in label.shape[2:]))
    hd = torch.where(torch.isfinite(hd), hd, torch.full_like(hd, diagonal)).clamp(max=diagonal)
    return {"dice": float(dice.nanmean()), "hd95": float(hd.mean())}


def amalgamated_predictor(model, label: torch.Tensor, prompt: str):
    """Prompts at test time come from the label, as a user's box would (MedSAM protocol)."""
    from .data import points_from_masks

    gen = torch.Generator().manual_seed(0)

    def fn(x, idx):
        y = label[idx]
        boxes = boxes_from_masks(y).to(x.device) if "box" in prompt else None
        points = points_from_masks(y, gen).to(x.device) if "point" in prompt else None
        logits, _ = model(x, boxes=boxes, points=points)
        return torch.sigmoid(logits) > 0.5

    return fn


def softmax_predictor(net):
    def fn(x, idx):
        return net(x).argmax(1, keepdim=True)

    return fn


def _slice(vol: np.ndarray, label: np.ndarray) -> np.ndarray:
    """2D images pass through; 3D volumes show the axial slice with the most foreground."""
    if vol.ndim == 2:
        return vol
    z = int(label.reshape(-1, label.shape[-1]).sum(0).argmax())
    return vol[..., z]


def examples_figure(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], title: str):
    """rows: (task, image, label, prediction) -> one row of three panels per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(7.5, 2.5 * len(rows)), squeeze=False)
    for r, (name, img, lab, pred) in enumerate(rows):
        panels = [_slice(v, lab) for v in (img, lab, pred)]
        for c, what in enumerate(("image", "label", "prediction")):
            ax = axes[r, c]
            ax.imshow(panels[c], cmap="gray" if c == 0 else "viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(what)
        axes[r, 0].set_ylabel(name)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def results_figure(table, title: str):
    """Dice per task as bars (the comparison people read first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(table["task"], table["dice"], color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice")
    ax.set_title(title)
    fig.tight_layout()
    return fig
