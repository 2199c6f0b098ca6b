"""Cumulative fault detection curves of selections, and faults over time of fuzzers."""

from __future__ import annotations

import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fault_curves(curves: dict[str, pd.DataFrame]):
    """Cumulative FDR and FDD against the number of selected inputs, one line per strategy."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, df in curves.items():
        left.plot(df["selected"], df["fdr"], label=name)
        right.plot(df["selected"], df["fdd"], label=name)
    left.set(xlabel="selected inputs", ylabel="fault detection rate")
    right.set(xlabel="selected inputs", ylabel="distinct (pred, true) faults")
    left.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fuzz_curves(curves: dict[str, pd.DataFrame]):
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, df in curves.items():
        left.plot(df["seconds"], df["faults"], label=name)
        right.plot(df["seconds"], df["fault_types"], label=name)
    left.set(xlabel="seconds", ylabel="faults")
    right.set(xlabel="seconds", ylabel="fault types")
    left.legend(fontsize=7)
    fig.tight_layout()
    return fig
