"""Cumulative fault detection curves of selections, and faults over time of fuzzers."""

from __future__ import annotations

import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _two_panels(
    curves: dict[str, pd.DataFrame],
    x: str,
    ys: tuple[str, str],
    xlabel: str,
    ylabels: tuple[str, str],
):
    """Two cumulative curves side by side, one line per strategy."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, df in curves.items():
        for ax, y in zip(axes, ys, strict=True):
            ax.plot(df[x], df[y], label=name)
    for ax, ylabel in zip(axes, ylabels, strict=True):
        ax.set(xlabel=xlabel, ylabel=ylabel)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def fault_curves(curves: dict[str, pd.DataFrame]):
    """Cumulative FDR and FDD against the number of selected inputs, one line per strategy."""
    return _two_panels(
        curves,
        "selected",
        ("fdr", "fdd"),
        "selected inputs",
        ("fault detection rate", "distinct (pred, true) faults"),
    )


def fuzz_curves(curves: dict[str, pd.DataFrame]):
    """Cumulative faults and fault types against fuzzing seconds, one line per fuzzer."""
    return _two_panels(
        curves, "seconds", ("faults", "fault_types"), "seconds", ("faults", "fault types")
    )
