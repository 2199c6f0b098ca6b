"""Figures: live clusters per epoch and the learned cluster embedding."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def clusters_alive(history: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, label in (
        ("clusters/users_alive", "user clusters"),
        ("clusters/items_alive", "item clusters"),
    ):
        ax.step(history["epoch"], history[key], where="post", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("live clusters (all views)")
    ax.legend()
    ax.set_title("MFDMC: clusters alive per epoch")
    return fig


def cluster_embedding(model):
    """Live cluster centres of every view, projected to 2-D by PCA, sized by membership."""
    from sklearn.decomposition import PCA

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (name, side) in zip(
        axes, (("users", model.users), ("items", model.items)), strict=True
    ):
        centers = side.centers.detach().cpu().numpy()
        alive = side.alive.cpu().numpy()
        usage = side.weights().sum(0).detach().cpu().numpy()
        views = centers.shape[0]
        flat = np.concatenate([centers[v][alive[v]] for v in range(views)])
        xy = PCA(2).fit_transform(flat) if len(flat) > 2 else np.pad(flat[:, :2], ((0, 0), (0, 0)))
        start = 0
        for v in range(views):
            n = int(alive[v].sum())
            sizes = 20 + 300 * usage[v][alive[v]] / max(1.0, usage[v].sum())
            ax.scatter(
                xy[start : start + n, 0],
                xy[start : start + n, 1],
                s=sizes,
                alpha=0.7,
                label=f"view {v}",
            )
            start += n
        ax.set_title(f"{name}: live clusters (size = members)")
        ax.legend(fontsize=7)
    return fig
