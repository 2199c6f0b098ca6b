"""`celine compare task=X [--baseline METHOD]`: the table a paper would print, from the store.

Runs are grouped by everything but the seed (method, model, hardware, the parameters that differ
between runs); per group: n seeds, mean and 95% interval of each declared metric, and with
`--baseline` the paired difference against that method over the seeds both have, its interval and
p (statistics: `celine.stats`, table: `celine.evidence`). FINISHED runs only unless `--all`; a
seed run twice counts once (the latest). Writes the per-run CSV, the summary CSV and markdown,
and a plot with error bars.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from celine import paths, registry

_IDENTITY = ("method", "model", "hardware", "seed")
_NOISY_PARAMS = ("paths.", "tracking.", "reproduce.")  # reproduce.*: the preset's table settings


def comparison_table(runs, metric_names: list[str], seed_key: str = "seed"):
    """Turn `mlflow.search_runs` output into one row per run with the columns that matter.

    `seed` comes from the run's param `seed_key` (`seed`, or e.g. `model.seed` when that is what
    a sweep varies); `missing` holds the metrics the method reported as missing, with reasons.
    """
    import pandas as pd

    from celine.experiment import MISSING_TAG

    if runs.empty:
        return pd.DataFrame()
    if "tags.celine.role" in runs:
        runs = runs[runs["tags.celine.role"] != "sweep"]
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"].str[:8],
            "run_name": runs.get("tags.mlflow.runName"),
            "status": runs["status"],
            "start": runs["start_time"],  # reruns of a seed: the latest counts
            **{k: runs.get(f"tags.celine.{k}") for k in _IDENTITY},
        }
    )
    seed_param = f"params.{seed_key}"
    if seed_key != "seed":
        if seed_param not in runs:
            raise SystemExit(f"celine compare: --seed-key {seed_key}: no run has that parameter")
        table["seed"] = runs[seed_param]
    param_cols = [
        c
        for c in runs.columns
        if c.startswith("params.")
        and not c[len("params.") :].startswith(_NOISY_PARAMS)
        and c[len("params.") :] not in ("seed", "method.name", "model.name", "task.name")
        and c != seed_param
        and _differs(runs, c)
    ]
    for c in sorted(param_cols):
        table[c[len("params.") :]] = runs[c]
    for m in metric_names:
        table[m] = runs.get(f"metrics.{m}")
    missing_cols = {
        c: c[len("tags." + MISSING_TAG) :] for c in runs if c.startswith("tags." + MISSING_TAG)
    }
    table["missing"] = (
        [
            {name: row[c] for c, name in missing_cols.items() if isinstance(row[c], str)}
            for _, row in runs[list(missing_cols)].iterrows()
        ]
        if missing_cols
        else [{} for _ in range(len(runs))]
    )
    for name in set(missing_cols.values()) & set(metric_names):
        # a metric reported missing has no number, whatever a partial log may have left
        has = table["missing"].map(lambda r, n=name: n in r).to_numpy()
        table.loc[has, name] = float("nan")
    return table.reset_index(drop=True)


def _differs(runs, column: str) -> bool:
    """Whether a parameter tells runs apart. A parameter only some methods have (NaN in the
    others' runs) counts only where it varies among the runs that have it."""
    values = runs[column]
    if values.notna().all() or not column.startswith("params.method."):
        return values.astype(str).nunique(dropna=False) > 1
    return values.dropna().astype(str).nunique() > 1


def _where(table, conditions: list[str]):
    for cond in conditions:
        key, _, value = cond.partition("=")
        if key not in table:
            raise SystemExit(
                f"celine compare: --where {cond}: no column {key!r}; columns: "
                + ", ".join(table.columns)
            )
        # a comma-separated VALUE keeps any of them (method=certaindex_tree,fixed_budget_tree)
        table = table[table[key].astype(str).isin(value.split(","))]
    return table.reset_index(drop=True)


def store_exists(uri: str) -> str | None:
    """The local path behind a tracking URI if it does not exist (None: it exists, or is remote).
    `mlflow.search_runs` would silently create an empty store there."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        return None if path.is_file() else str(path)
    if uri.startswith("file://"):
        path = Path(uri[len("file://") :])
    elif "://" not in uri:
        path = Path(uri)
    else:
        return None  # http(s), databricks, ...: the server answers for itself
    return None if path.is_dir() else str(path)


def _tracking_from_config(task: str, overrides: list[str]) -> tuple[str | None, str | None]:
    """tracking.uri and tracking.experiment as a run of this task would resolve them (the
    command line, conf/local/default.yaml, the task preset)."""
    from celine import configs

    with configs.hydra_context():
        cfg = configs.compose([f"task={task}", *overrides])
    tracking = cfg.get("tracking") or {}
    return tracking.get("uri"), tracking.get("experiment")


def default_seed_key(task: str) -> str:
    from celine import headline

    try:
        return headline.load(task).seed_key
    except Exception:
        return "seed"


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="celine compare",
        description="Group runs by everything but the seed; n, mean and 95%% interval per group; "
        "with --baseline the paired difference, its interval and p (paired t-test; the exact "
        "permutation p beside it).",
    )
    parser.add_argument(
        "selector",
        nargs="+",
        help="task=NAME, then optionally tracking.experiment=NAME / tracking.uri=URI",
    )
    parser.add_argument("--uri", default=None, help="tracking URI (default: the project's store)")
    parser.add_argument(
        "--experiment", default=None, help="MLflow experiment (default: celine/<task>)"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="METHOD",
        help="pair every group with this method over shared seeds",
    )
    parser.add_argument(
        "--seed-key",
        default=None,
        help="the param that indexes replicates (default: the headline preset's reproduce.seed_key, else seed)",
    )
    parser.add_argument(
        "--metrics",
        default=None,
        help="comma-separated metrics (default: the task's declared metrics)",
    )
    parser.add_argument("--out", default=None, help="folder for the CSV, markdown and plot")
    parser.add_argument("--all", action="store_true", help="include runs that did not finish")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs whose column KEY equals VALUE, or any of VALUE,VALUE,... (repeatable), "
        "e.g. method=gptq,rtn",
    )
    ns = parser.parse_args(args)
    key, _, task = ns.selector[0].partition("=")
    registry.discover()
    if key != "task" or task not in registry.TASKS:
        print(
            f"celine compare: task={task or '?'} is not a task; choose from "
            + ", ".join(sorted(registry.TASKS)),
            file=sys.stderr,
        )
        return 2
    extra = ns.selector[1:]
    bad = [o for o in extra if o.split("=", 1)[0] not in ("tracking.experiment", "tracking.uri")]
    if bad:
        print(
            f"celine compare: {bad[0]}: only tracking.experiment=... and tracking.uri=... "
            "may follow task=...",
            file=sys.stderr,
        )
        return 2
    spec = registry.TASKS[task]
    metric_names = [m.name for m in spec.metrics]
    if ns.metrics:
        chosen = [m.strip() for m in ns.metrics.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in metric_names]
        if unknown:
            print(
                f"celine compare: --metrics {unknown[0]}: not a metric of task {task}; "
                "declared: " + ", ".join(metric_names),
                file=sys.stderr,
            )
            return 2
        metric_names = chosen
    if ns.baseline is not None and ns.baseline not in spec.methods:
        print(
            f"celine compare: --baseline {ns.baseline}: not a method of task {task}; "
            "choose from " + ", ".join(spec.methods),
            file=sys.stderr,
        )
        return 2

    cfg_uri, cfg_experiment = _tracking_from_config(task, extra)
    uri = ns.uri or cfg_uri or paths.default_tracking_uri()
    experiment = ns.experiment or cfg_experiment or f"celine/{task}"
    absent = store_exists(uri)
    if absent is not None:
        print(
            f"celine compare: tracking.uri={uri}: no store at {absent} (nothing was run into "
            "it; pass --uri or tracking.uri=... to point at one)",
            file=sys.stderr,
        )
        return 2

    from celine import evidence
    from celine.tracking.mlflow_store import runs_frame

    runs = runs_frame(uri, experiment)
    table = comparison_table(runs, metric_names, ns.seed_key or default_seed_key(task))
    if not ns.all and not table.empty:
        table = table[table["status"] == "FINISHED"].reset_index(drop=True)
    table = _where(table, ns.where)
    if table.empty:
        print(f"no {'' if ns.all else 'finished '}runs of task {task} in {experiment} at {uri}")
        return 1
    try:
        ev = evidence.summarise(table.drop(columns=["run_name"]), metric_names, ns.baseline)
    except ValueError as err:
        print(f"celine compare: {err}", file=sys.stderr)
        return 2
    out = Path(ns.out) if ns.out else paths.outputs_dir() / "compare" / task
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs_csv, summary_csv = out / f"{task}-{stamp}-runs.csv", out / f"{task}-{stamp}.csv"
    md_path, png_path = out / f"{task}-{stamp}.md", out / f"{task}-{stamp}.png"
    table.to_csv(runs_csv, index=False)
    ev.summary.to_csv(summary_csv, index=False)
    text = evidence.markdown(ev)
    md_path.write_text(f"{text}\n{evidence.legend(ev)}")
    plotted = evidence.plot(ev, png_path, f"celine compare task={task}")
    goals = ", ".join(
        f"{m.name} ({'↑' if m.goal == 'max' else '↓' if m.goal == 'min' else '·'})"
        for m in spec.metrics
        if m.name in metric_names
    )
    print(f"task {task}: {len(table)} runs from {experiment} at {uri}\n")
    print(text)
    print(evidence.legend(ev))
    print(f"metrics: {goals}")
    print(f"runs:    {runs_csv}\ntable:   {summary_csv}\nmarkdown: {md_path}")
    print(f"plot:    {png_path if plotted else '(no metric to plot)'}")
    return 0
