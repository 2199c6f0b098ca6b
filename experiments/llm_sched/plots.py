"""Figures: latency against arrival rate per scheduler, tau sweep, predictor training."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def latency_vs_rate(table: pd.DataFrame):
    rows = table[table["workload"] != "burst"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for name, g in rows.groupby("scheduler", sort=False):
        g = g.sort_values("rate_rps")
        for ax, col in zip(axes, ("mean_latency_per_token", "p90_latency_per_token", "max_wait"),
                           strict=True):  # fmt: skip
            ax.plot(g["rate_rps"], g[col], marker="o", label=name)
    for ax, title in zip(axes, ("mean latency per token (s)", "P90 latency per token (s)",
                                "max wait (s)"), strict=True):  # fmt: skip
        ax.set_xlabel("arrival rate (req/s)")
        ax.set_title(title)
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def tau_sweep(df: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sweep = df[df["kind"] == "sweep"].sort_values("tau")
    ax.plot(sweep["tau"], sweep["mean_latency_per_token"], marker="o",
            label="approx-SJF (oracle, fraction shuffled)")  # fmt: skip
    for r in df[df["kind"] == "predictor"].itertuples():
        ax.scatter([r.tau], [r.mean_latency_per_token], marker="*", s=120, zorder=3)
        ax.annotate(r.label, (r.tau, r.mean_latency_per_token), fontsize=8)
    ax.set_xlabel("Kendall tau (predicted vs true length)")
    ax.set_ylabel("mean latency per token (s), high load")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]]):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, hist in histories.items():
        h = pd.DataFrame(hist)
        a.plot(h["epoch"], h["loss"], label=name)
        b.plot(h["epoch"], h["test_tau"], label=name)
    a.set_title("training loss")
    b.set_title("held-out Kendall tau")
    for ax in (a, b):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def engine_vs_sim(cmp: pd.DataFrame):
    """Mean latency per token per scheduler on the real engine and in the calibrated simulator,
    one panel per load."""
    loads = [w for w in cmp["workload"].unique() if w != "burst"]
    fig, axes = plt.subplots(1, max(len(loads), 1), figsize=(4.5 * max(len(loads), 1), 3.6),
                             squeeze=False)  # fmt: skip
    for ax, w in zip(axes[0], loads, strict=False):
        g = cmp[cmp["workload"] == w]
        x = range(len(g))
        ax.bar([i - 0.2 for i in x], g["mean_latency_per_token_engine"], 0.4, label="vLLM")
        ax.bar([i + 0.2 for i in x], g["mean_latency_per_token_sim"], 0.4, label="simulator")
        ax.set_xticks(list(x), g["scheduler"], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{w}: mean latency per token (s)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig
