"""Dice (MONAI DiceMetric) and HD95 (MONAI HausdorffDistanceMetric, percentile 95) per task, and a
figure of image, label and prediction per task."""

from __future__ import annotations

import math

import numpy as np
import torch

from .data import boxes_from_masks


@torch.no_grad()
def predict(fn, x: torch.Tensor, device, batch_size: int = 8, roi=None) -> torch.Tensor:
    """Binary masks (N, 1, *S) from `fn(x_batch, index, window=None) -> foreground mask`.

    Images larger than `roi` (real test volumes kept at their resampled size) go through MONAI's
    sliding_window_inference, one image at a time; `window` is then the spatial slices of the
    current window, so a prompt can be cut to it."""
    if roi is None or tuple(x.shape[2:]) == tuple(roi):
        out = []
        for i in range(0, len(x), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(x)))
            out.append(fn(x[idx].to(device), idx).float().cpu())
        return torch.cat(out)
    from monai.inferers import sliding_window_inference

    out = []
    for i in range(len(x)):
        idx = torch.tensor([i])

        def window(patch, coords, idx=idx):
            return fn(patch, idx, tuple(coords[0][2:])).float()

        prob = sliding_window_inference(
            x[i : i + 1].to(device), tuple(roi), 1, window, overlap=0.25, with_coord=True
        )
        out.append((torch.as_tensor(prob).as_subclass(torch.Tensor) > 0.5).float().cpu())
    return torch.cat(out)


def segmentation_scores(pred: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
    """Dice over every image, HD95 over the images with foreground, and the false-positive rate
    on the images without foreground.

    An image with an empty label counts in the Dice: 1 if the prediction is empty too, 0 if it
    marks anything (MONAI's `ignore_empty=False`), so false positives there cost what a missed
    object costs elsewhere. HD95 is undefined without foreground; an empty prediction where there
    is foreground gets the image diagonal (the worst possible)."""
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    pred, label = pred > 0.5, label > 0.5
    if len(label) == 0:
        return {"dice": float("nan"), "hd95": float("nan"), "fp_empty": float("nan")}
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)(pred, label)
    keep = label.flatten(1).any(1)
    out = {"dice": float(dice.nanmean())}
    if keep.any():
        hd = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(
            pred[keep], label[keep]
        )
        diagonal = math.sqrt(sum(s * s for s in label.shape[2:]))
        hd = torch.where(torch.isfinite(hd), hd, torch.full_like(hd, diagonal)).clamp(max=diagonal)
        out["hd95"] = float(hd.mean())
    else:
        out["hd95"] = float("nan")
    empty = ~keep
    out["fp_empty"] = (
        float(pred[empty].flatten(1).any(1).float().mean()) if empty.any() else float("nan")
    )
    return out


def amalgamated_predictor(model, prompt: str, source):
    """`source(idx) -> (B, 1, *S)` masks that the test-time prompts are drawn from: the label
    (MedSAM's protocol, a user's box) or the input's own-task expert's prediction (no ground
    truth at test time). A mask without foreground gives the whole image as its box."""
    from .data import points_from_masks

    gen = torch.Generator().manual_seed(0)

    def fn(x, idx, window=None):
        y = source(x, idx, window) if prompt != "none" else None
        boxes = boxes_from_masks(y.cpu()).to(x.device) if "box" in prompt else None
        points = points_from_masks(y.cpu(), gen).to(x.device) if "point" in prompt else None
        logits, _ = model(x, boxes=boxes, points=points)
        return torch.sigmoid(logits) > 0.5

    return fn


def label_source(label: torch.Tensor):
    def source(x, idx, window=None):
        y = label[idx]
        return y if window is None else y[(slice(None), slice(None), *window)]

    return source


def expert_source(net):
    return lambda x, idx, window=None: net(x).argmax(1, keepdim=True).float()


def softmax_predictor(net):
    def fn(x, idx, window=None):
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
