"""Figures of the lookahead room."""

from __future__ import annotations

import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accepted_histogram(accepted: list[list[int]], title: str):
    """How many tokens each decoding step committed (1 = no speculation accepted)."""
    plt = _plt()
    flat = [a for row in accepted for a in row]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if flat:
        ax.hist(flat, bins=range(1, max(flat) + 2), align="left", rwidth=0.8)
    ax.set_xlabel("tokens committed per step")
    ax.set_ylabel("steps")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def sweep_plot(frame: pd.DataFrame, title: str = ""):
    """Speedup and compression ratio against W, one line per N (from a (N, W) sweep)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("compression_ratio", "speedup"), strict=True):
        for level, rows in frame.groupby("level"):
            rows = rows.sort_values("window")
            ax.plot(rows["window"], rows[metric], marker="o", label=f"N={int(level)}")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("window W (G = W)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_xscale("log", base=2)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
