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


def grid_bars(summary: pd.DataFrame):
    """One panel per attack: mean ASR and RA over seeds of every defence setting of a grid
    (`grid.summary`), the clean-accuracy change in points under each pair of bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    attacks = list(dict.fromkeys(summary.index.get_level_values(0)))
    fig, axes = plt.subplots(len(attacks), 1, figsize=(11, 3.0 * len(attacks)), squeeze=False)
    for ax, attack in zip(axes[:, 0], attacks, strict=True):
        part = summary.loc[attack]
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["asr"], 0.4, label="ASR")
        ax.bar(x + 0.2, part["ra"], 0.4, label="RA")
        labels = [f"{name}\n{pts:+.1f}" for name, pts in zip(part.index, part["pts"], strict=True)]
        ax.set_xticks(x, labels, fontsize=7, rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{attack} (mean over seeds; label: setting, clean-acc change in points)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
