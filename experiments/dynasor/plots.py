"""The curves people compare, as figures."""

from __future__ import annotations

import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tokens_accuracy(
    curves: dict[str, pd.DataFrame], marks: dict[str, tuple] | None = None, title=""
):
    """Accuracy (± s.e.) against generated tokens per problem, one line per policy."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, df in curves.items():
        df = df.sort_values("tokens")
        ax.errorbar(
            df["tokens"], df["accuracy"], yerr=df["accuracy_se"], marker=".", capsize=2, label=label
        )
    for label, (x, y) in (marks or {}).items():
        ax.plot([x], [y], marker="*", markersize=14, linestyle="none", label=label)
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def attainment_curves(frame: pd.DataFrame, x: str, target: float, title: str):
    """Program deadline attainment against `x` (rate or SLO scale), one line per scheduler."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, df in frame.groupby("scheduler"):
        df = df.sort_values(x)
        ax.plot(df[x], df["attainment"], marker="o", label=name)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"{target:.0%} target")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("programs within deadline")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
