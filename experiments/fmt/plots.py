"""Bar plots of clean accuracy, ASR and RA per stage of a defence."""

from __future__ import annotations

import pandas as pd


def stage_bars(table: pd.DataFrame, title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = ["acc", "asr", "ra"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / max(1, len(table))
    x = np.arange(len(metrics))
    for i, row in enumerate(table.itertuples()):
        ax.bar(x + i * width, [getattr(row, m) for m in metrics], width, label=row.stage)
    ax.set_xticks(x + width * (len(table) - 1) / 2, ["clean acc", "ASR", "RA"])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig
