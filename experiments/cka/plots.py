"""Figures of the cka room: the student's representation in 2-D and its training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd


def representation_plot(features, labels, class_names: list[str], how: str, title: str, seed=0):
    """PCA or t-SNE of `features` [N, D], one colour per (true) class. Labels only colour the
    points: they are read after training, for the picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats = np.asarray(features, dtype=np.float64)
    if how == "tsne":
        from sklearn.manifold import TSNE

        perplexity = max(5.0, min(30.0, (len(feats) - 1) / 3))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
    else:
        from sklearn.decomposition import PCA

        xy = PCA(2, random_state=seed).fit_transform(feats)
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for c in np.unique(labels):
        pts = xy[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=cmap(int(c) % cmap.N), label=class_names[c])
    ax.set_title(title)
    ax.set_xlabel(f"{how} 1")
    ax.set_ylabel(f"{how} 2")
    if len(class_names) <= 20:
        ax.legend(markerscale=3, fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    return fig


def curves_plot(history: list[dict], val_acc: list[tuple[int, float]]):
    """Every loss part and the validation union accuracy against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history).set_index("epoch")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for column in frame.columns:
        left.plot(frame.index, frame[column], label=column)
    left.set_xlabel("epoch")
    left.set_title("student objective")
    left.legend(fontsize=7)
    if val_acc:
        steps, accs = zip(*val_acc, strict=True)
        right.plot(steps, accs, marker=".")
    right.set_xlabel("epoch")
    right.set_title("val/union_acc (monitoring only)")
    fig.tight_layout()
    return fig
