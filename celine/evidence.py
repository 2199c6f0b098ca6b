"""From one row per run to the table a paper prints: per group n seeds, mean and 95% interval of
each metric, and against a baseline the paired difference over shared seeds with its interval
and p (statistics in `celine.stats`). Used by `celine compare` (rows from the MLflow store) and
`celine reproduce` (rows from a sweep folder).

The per-run table has a `seed` column (the replicate key), a `start` column (reruns of one seed
keep the latest), the grouping columns, one column per metric, and optionally `missing`: a dict
{metric: reason} per run for metrics the method reported as missing (`Result.missing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from celine import stats

NOT_GROUPED = ("run_id", "run_name", "status", "start", "seed", "missing", "job")
METHOD = "method"


@dataclass
class Evidence:
    """The summary (one row per group; CSV-ready) and what it was computed from."""

    summary: pd.DataFrame
    keys: list[str]
    metrics: list[str]
    baseline: str | None
    reruns_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def latest_per_seed(table: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, int]:
    """A seed run twice in one group counts once: keep its latest run."""
    if table.empty:
        return table, 0
    order = table.sort_values("start", kind="stable") if "start" in table else table
    kept = order.drop_duplicates([*keys, "seed"], keep="last")
    return kept.sort_index(), len(table) - len(kept)


def group_keys(table: pd.DataFrame, metrics: list[str]) -> list[str]:
    return [c for c in table.columns if c not in NOT_GROUPED and c not in metrics]


def summarise(table: pd.DataFrame, metrics: list[str], baseline: str | None = None) -> Evidence:
    """Group by everything but the seed; describe each metric; pair each group with the baseline."""
    metrics = [m for m in metrics if m in table]
    keys = group_keys(table, metrics)
    table = table.copy()
    for k in keys:
        table[k] = table[k].fillna("-").astype(str)
    table, dropped = latest_per_seed(table, keys)
    if "missing" not in table:
        table["missing"] = [{} for _ in range(len(table))]
    groups = list(table.groupby(keys, sort=False)) if keys else [((), table)]
    notes = []
    base_groups = {}
    if baseline is not None:
        if METHOD not in table or baseline not in set(table[METHOD]):
            raise ValueError(f"--baseline {baseline}: no runs of method {baseline!r}")
        base_groups = {
            _as_tuple(k): g
            for k, g in groups
            if dict(zip(keys, _as_tuple(k), strict=True))[METHOD] == baseline
        }
    rows = []
    for key, group in groups:
        key = _as_tuple(key)
        row = dict(zip(keys, key, strict=True))
        row["n"] = group["seed"].nunique()
        base = _matching_baseline(row, keys, base_groups) if baseline is not None else None
        for m in metrics:
            reasons = [r[m] for r in group["missing"] if isinstance(r, dict) and m in r]
            values = group.set_index("seed")[m].astype(float).dropna()
            if reasons:
                # never a number: a metric whose precondition failed in any run of the group
                row[f"{m}"] = math.nan
                row[f"{m} missing"] = f"{len(reasons)} of {row['n']}: {reasons[0]}"
                continue
            s = stats.describe(values.to_numpy())
            row[f"{m}"], row[f"{m} n"] = s.mean, s.n
            row[f"{m} low"], row[f"{m} high"] = s.low, s.high
            if base is None or row.get(METHOD) == baseline:
                continue
            base_missing = [r[m] for r in base["missing"] if isinstance(r, dict) and m in r]
            if base_missing:
                row[f"{m} missing"] = f"baseline {baseline}: {base_missing[0]}"
                continue
            base_values = base.set_index("seed")[m].astype(float).dropna().to_dict()
            if not base_values:
                row[f"{m} vs baseline"] = f"{baseline} has no {m}"
                continue
            p = stats.paired(values.to_dict(), base_values)
            row[f"{m} diff"], row[f"{m} pairs"] = p.diff, p.n
            row[f"{m} diff low"], row[f"{m} diff high"] = p.low, p.high
            row[f"{m} p"], row[f"{m} p_perm"] = p.p, p.p_perm
        rows.append(row)
    summary = pd.DataFrame(rows)
    if dropped:
        notes.append(f"{dropped} rerun(s) of a seed already counted were left out (latest kept)")
    return Evidence(summary, keys, metrics, baseline, dropped, notes)


def _as_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _matching_baseline(row: dict, keys: list[str], base_groups: dict):
    """The baseline group that shares this group's context: every key but the method and the
    method's own parameters. If none does and there is only one baseline group, that one."""
    context = [k for k in keys if k != METHOD and not k.startswith("method.")]
    for key, group in base_groups.items():
        values = dict(zip(keys, key, strict=True))
        if all(values[k] == row[k] for k in context):
            return group
    if len(base_groups) == 1:
        return next(iter(base_groups.values()))
    return None


def markdown(ev: Evidence) -> str:
    """The headline table: one row per group, `mean [95% interval]` per metric, and the paired
    difference against the baseline with its interval and p."""
    s = ev.summary
    if s.empty:
        return "(no runs)\n"
    shown_keys = [k for k in ev.keys if k in s and (k == METHOD or s[k].nunique() > 1)]
    head = [*shown_keys, "n"]
    for m in ev.metrics:
        head.append(m)
        if ev.baseline:
            head.append(f"Δ {m} vs {ev.baseline} [95% CI], p")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in s.iterrows():
        cells = [str(r[k]) for k in shown_keys] + [str(int(r["n"]))]
        for m in ev.metrics:
            missing = r.get(f"{m} missing")
            if isinstance(missing, str) and math.isnan(_num(r.get(m))):
                cells.append(f"missing ({missing})")
            else:
                cells.append(
                    stats.fmt_value(
                        _num(r.get(m)), _num(r.get(f"{m} low")), _num(r.get(f"{m} high"))
                    )
                )
            if not ev.baseline:
                continue
            if r.get(METHOD) == ev.baseline:
                cells.append("(baseline)")
            elif isinstance(missing, str):
                cells.append(f"missing ({missing})")
            elif isinstance(r.get(f"{m} vs baseline"), str):
                cells.append(r[f"{m} vs baseline"])
            elif math.isnan(_num(r.get(f"{m} diff"))):
                cells.append("no shared seeds")
            else:
                diff = stats.fmt_value(
                    _num(r[f"{m} diff"]), _num(r[f"{m} diff low"]), _num(r[f"{m} diff high"])
                )
                cells.append(
                    f"{_signed(diff)}, p={stats.fmt_p(_num(r[f'{m} p']))} "
                    f"(perm {stats.fmt_p(_num(r[f'{m} p_perm']))}, {int(r[f'{m} pairs'])} pairs)"
                )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def legend(ev: Evidence) -> str:
    text = (
        f"mean [{stats.CONFIDENCE:.0%} Student-t interval] over n seeds (one run per seed: reruns "
        "count once, the latest)."
    )
    if ev.baseline:
        text += (
            f" Δ = method − {ev.baseline} over the seeds both have, with its 95% t-interval; "
            f"p: {stats.REPORTED_TEST} (two-sided); perm: exact paired permutation test "
            "(sign flips; its smallest possible p is 2/2^pairs)."
        )
    text += " An interval shown as [n/a] is undefined (one seed), not zero."
    return "\n".join([text, *ev.notes]) + "\n"


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _signed(text: str) -> str:
    return text if text.startswith("-") else f"+{text}"


def plot(ev: Evidence, path, title: str) -> bool:
    """One panel per metric (up to 4): the group means with their 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = ev.summary
    shown = [m for m in ev.metrics if m in s and s[m].notna().any()][:4]
    if not shown:
        return False
    label_keys = [k for k in ev.keys if k in s and (k == METHOD or s[k].nunique() > 1)]
    labels = [
        "\n".join(str(r[k]) for k in label_keys) + f"\nn={int(r['n'])}" for _, r in s.iterrows()
    ]
    fig, axes = plt.subplots(1, len(shown), figsize=(max(4.0, 0.9 * len(s)) * len(shown), 4.2))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, shown, strict=True):
        mean = s[m].astype(float).to_numpy()
        low = s.get(f"{m} low", pd.Series(np.nan, index=s.index)).astype(float).to_numpy()
        high = s.get(f"{m} high", pd.Series(np.nan, index=s.index)).astype(float).to_numpy()
        err = np.nan_to_num(np.vstack([mean - low, high - mean]), nan=0.0)
        x = np.arange(len(s))
        ax.bar(x, np.nan_to_num(mean), yerr=err, capsize=4, color="#4c72b0")
        for i in np.flatnonzero(np.isnan(mean)):
            ax.text(i, 0, "missing", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(m)
    fig.suptitle(f"{title} (bars: mean, whiskers: 95% interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
