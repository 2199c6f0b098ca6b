"""`celine compare task=X`: the table a paper would print, from the runs in the store.

One row per run; columns are method, model, hardware, seed, the parameters that differ between
the runs, and the task's declared metrics. Runs that differ only in their seed are also summarised
as mean, standard error and count. Writes both tables as CSV and a bar plot per metric.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from celine import paths, registry

_IDENTITY = ("method", "model", "hardware", "seed")
_NOISY_PARAMS = ("paths.", "tracking.")


def comparison_table(runs, metric_names: list[str]):
    """Turn `mlflow.search_runs` output into one row per run with the columns that matter."""
    import pandas as pd

    if runs.empty:
        return pd.DataFrame()
    if "tags.celine.role" in runs:
        runs = runs[runs["tags.celine.role"] != "sweep"]
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"].str[:8],
            "run_name": runs.get("tags.mlflow.runName"),
            "status": runs["status"],
            "start": runs["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
            **{k: runs.get(f"tags.celine.{k}") for k in _IDENTITY},
        }
    )
    param_cols = [
        c
        for c in runs.columns
        if c.startswith("params.")
        and not c[len("params.") :].startswith(_NOISY_PARAMS)
        and c[len("params.") :] not in ("seed", "method.name", "model.name", "task.name")
        and _differs(runs, c)
    ]
    for c in sorted(param_cols):
        table[c[len("params.") :]] = runs[c]
    for m in metric_names:
        table[m] = runs.get(f"metrics.{m}")
    return table.reset_index(drop=True)


def _differs(runs, column: str) -> bool:
    """Whether a parameter tells runs apart. A parameter only some methods have (NaN in the
    others' runs) counts only where it varies among the runs that have it."""
    values = runs[column]
    if values.notna().all() or not column.startswith("params.method."):
        return values.astype(str).nunique(dropna=False) > 1
    return values.dropna().astype(str).nunique() > 1


def summary_table(table, metric_names: list[str]):
    """Mean, standard error and count of each metric over runs that differ only in seed."""
    import pandas as pd

    if table.empty:
        return pd.DataFrame()
    skip = {"run_id", "run_name", "status", "start", "seed", *metric_names}
    keys = [c for c in table.columns if c not in skip]
    metrics = [m for m in metric_names if m in table and table[m].notna().any()]
    grouped = table.fillna({k: "-" for k in keys}).groupby(keys, sort=False)[metrics]
    mean, sem, n = grouped.mean(), grouped.sem(), grouped.size().rename("runs")
    out = pd.concat([mean, sem.add_suffix(" se"), n], axis=1)
    order = [c for m in metrics for c in (m, f"{m} se")] + ["runs"]
    return out[order].reset_index()


def _where(table, conditions: list[str]):
    for cond in conditions:
        key, _, value = cond.partition("=")
        if key not in table:
            raise SystemExit(
                f"celine compare: --where {cond}: no column {key!r}; columns: "
                + ", ".join(table.columns)
            )
        table = table[table[key].astype(str) == value]
    return table.reset_index(drop=True)


def plot(table, metric_names: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in metric_names if m in table and table[m].notna().any()][:4]
    if not shown:
        return
    labels = (
        table["method"].astype(str)
        + "\n"
        + table["model"].astype(str)
        + "\nseed "
        + table["seed"].astype(str)
        + "\n"
        + table["run_id"]
    )
    fig, axes = plt.subplots(
        1, len(shown), figsize=(max(4.0, 1.2 * len(table)) * len(shown) / 1.5, 4)
    )
    for ax, metric in zip(list(axes) if len(shown) > 1 else [axes], shown, strict=True):
        ax.bar(range(len(table)), table[metric].astype(float))
        ax.set_xticks(range(len(table)), labels, fontsize=7)
        ax.set_title(metric)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="celine compare")
    parser.add_argument("selector", help="task=NAME")
    parser.add_argument("--uri", default=None, help="tracking URI (default: the project's store)")
    parser.add_argument("--out", default=None, help="folder for the CSV and plot")
    parser.add_argument("--all", action="store_true", help="include runs that did not finish")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs whose column KEY equals VALUE (repeatable), e.g. method=gptq",
    )
    ns = parser.parse_args(args)
    key, _, task = ns.selector.partition("=")
    registry.discover()
    if key != "task" or task not in registry.TASKS:
        print(
            f"celine compare: task={task or '?'} is not a task; choose from "
            + ", ".join(sorted(registry.TASKS)),
            file=sys.stderr,
        )
        return 2
    spec = registry.TASKS[task]
    metric_names = [m.name for m in spec.metrics]

    from celine.tracking.mlflow_store import runs_frame

    uri = ns.uri or paths.default_tracking_uri()
    runs = runs_frame(uri, f"celine/{task}")
    table = comparison_table(runs, metric_names)
    if not ns.all and not table.empty:
        table = table[table["status"] == "FINISHED"].reset_index(drop=True)
    table = _where(table, ns.where)
    if table.empty:
        print(f"no {'' if ns.all else 'finished '}runs of task {task} in {uri}")
        return 1
    out = Path(ns.out) if ns.out else paths.outputs_dir() / "compare" / task
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    csv_path, png_path = out / f"{task}-{stamp}.csv", out / f"{task}-{stamp}.png"
    table.to_csv(csv_path, index=False)
    summary = summary_table(table, metric_names)
    summary_path = out / f"{task}-{stamp}-summary.csv"
    summary.to_csv(summary_path, index=False)
    goals = ", ".join(
        f"{m.name} ({'↑' if m.goal == 'max' else '↓' if m.goal == 'min' else '·'})"
        for m in spec.metrics
    )
    plot(table, metric_names, png_path, f"celine compare task={task}")
    import pandas as pd

    with pd.option_context("display.max_columns", 60, "display.width", 250):
        print(table.drop(columns=["run_name", "start"]).to_string(index=False))
        if (summary["runs"] > 1).any():
            print("\nmean and standard error over seeds:")
            print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nmetrics: {goals}\ntable: {csv_path}\nsummary: {summary_path}\nplot:  {png_path}")
    return 0
