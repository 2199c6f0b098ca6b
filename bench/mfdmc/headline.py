"""The evidence behind experiments/mfdmc/README.md's headline: tune every method with the same
budget on an unreported data seed, then compare them over paired data seeds across the planted
generator's clustered (spread 0) -> continuous (spread 1) knob.

    R=bench/mfdmc/results; P="nice .venv/bin/python bench/mfdmc/headline.py"
    $P tune --out $R --methods mfdmc &  $P tune --out $R --methods mf_kmeans &
    $P tune --out $R --methods mf_surprise_svd; wait                   # 24 runs
    $P report --out $R --methods mfdmc &  $P report --out $R --methods mf_kmeans &
    $P report --out $R --methods mf_surprise_svd,mf_global_mean; wait   # 40 runs
    $P summarize --out $R

1. Tuning: each method's grid (GRIDS, four configurations for every tuned method) runs on
   data seed TUNE_SEED at every spread; the configuration with the lowest validation RMSE
   averaged over the spreads is kept (one configuration per method, as a user who does not
   know the data's spread would choose).
2. Report: the chosen configurations on data seeds 0..n-1 (run seed = data seed, so each seed
   is one paired replicate: the same data, split and initialisation seed for every method).
3. Statistics (scipy): mean and 95% t-interval per method and spread; against mf_biased the
   mean paired difference, its 95% interval, and the paired t-test and Wilcoxon p-values.

Every run goes through Celine's Experiment (the `celine run` code path, MLflow included) into
a throwaway outputs folder; the CSVs and the markdown table are written to --out.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

TUNE_SEED = 100  # the data seed hyperparameters are chosen on; never reported
BASELINE = "mf_biased"  # = mf_kmeans's ratings (see GRIDS)


def grid(**axes: list) -> list[list[str]]:
    keys = list(axes)
    return [
        [f"++method.{k}={v}" for k, v in zip(keys, values, strict=True)]
        for values in itertools.product(*axes.values())
    ]


# 4 configurations per tuned method (the same budget for each): the knobs its fit depends on
# most. mf_kmeans is biased MF plus clustering: its grid is biased MF's, and its ratings (same
# seed, same config, deterministic training) are biased MF's, so the mf_biased row is read
# from the mf_kmeans runs instead of training the same model twice.
GRIDS = {
    "mfdmc": grid(views=[2, 4], min_usage=[0.1, 0.5]),
    "mf_kmeans": grid(reg=[0.02, 0.05, 0.1, 0.3]),
    "mf_surprise_svd": grid(n_epochs=[50], lr_all=[0.005, 0.02], reg_all=[0.02, 0.1]),
}
REPORTED = ["mfdmc", "mf_kmeans", "mf_surprise_svd", "mf_global_mean"]
METRICS = ["test/rmse", "val/rmse", "nmi/users", "nmi/items", "clusters/alive", "best_epoch"]


def run_one(overrides: list[str], run_dir: Path) -> dict[str, float]:
    from celine import configs
    from celine.experiment import Experiment, JobInfo

    with configs.hydra_context():
        cfg = configs.compose(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    return Experiment(cfg, JobInfo(output_dir=run_dir, overrides=overrides)).run()


def base(method: str, spread: float, seed: int, extra: list[str]) -> list[str]:
    return [
        "task=mfdmc",
        f"method={method}",
        f"++task.planted_spread={spread}",
        f"++task.data_seed={seed}",
        f"seed={seed}",
        "hardware.threads=1",
        *extra,
    ]


def tune(methods: list[str], spreads: list[float], work: Path) -> pd.DataFrame:
    rows = []
    for method in methods:
        for c, extra in enumerate(GRIDS[method]):
            for spread in spreads:
                got = run_one(
                    base(method, spread, TUNE_SEED, extra), work / f"t{method}{len(rows)}"
                )
                rows.append(
                    {"method": method, "config": c, "overrides": " ".join(extra),
                     "spread": spread, "val/rmse": got["val/rmse"]}
                )  # fmt: skip
                print(method, extra, spread, round(got["val/rmse"], 4), flush=True)
    return pd.DataFrame(rows)


def choose(tuning: pd.DataFrame) -> dict[str, list[str]]:
    """Per method, the configuration with the lowest validation RMSE averaged over spreads
    (over the spreads every configuration of that method reached, if tuning was cut short)."""
    counts = tuning.groupby(["method", "spread"])["config"].transform("nunique")
    complete = tuning[counts == tuning.groupby("method")["config"].transform("nunique")]
    mean = complete.groupby(["method", "config"], as_index=False)["val/rmse"].mean()
    chosen = {
        m: GRIDS[m][int(g.loc[g["val/rmse"].idxmin(), "config"])] for m, g in mean.groupby("method")
    }
    return chosen | {"mf_global_mean": []}


def report(
    methods: list[str], spreads: list[float], seeds, chosen: dict, work: Path
) -> pd.DataFrame:
    rows = []
    for spread, seed, method in itertools.product(spreads, seeds, methods):
        got = run_one(base(method, spread, seed, chosen[method]), work / f"r{method}{len(rows)}")
        rows.append({"spread": spread, "seed": seed, "method": method}
                    | {k: got.get(k, np.nan) for k in METRICS})  # fmt: skip
        print(spread, seed, method, round(got["test/rmse"], 4), flush=True)
    return pd.DataFrame(rows)


def with_biased_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """mf_biased's rows: mf_kmeans's ratings metrics without its clustering metrics."""
    biased = runs[runs.method == "mf_kmeans"].assign(method=BASELINE)
    biased[["nmi/users", "nmi/items"]] = np.nan
    return pd.concat([runs, biased], ignore_index=True)


def summarize(runs: pd.DataFrame, metric: str = "test/rmse") -> pd.DataFrame:
    from scipy import stats

    out = []
    for (spread, method), g in runs.groupby(["spread", "method"], sort=False):
        g = g.sort_values("seed")
        x = g[metric].to_numpy()
        row = {"spread": spread, "method": method, "n": len(x), "mean": x.mean()}
        row["ci95"] = _half_width(x)
        for nmi in ("nmi/users", "nmi/items"):
            row[nmi] = g[nmi].mean()
        if method != BASELINE:
            b = runs[(runs.spread == spread) & (runs.method == BASELINE)].sort_values("seed")
            d = x - b[metric].to_numpy()
            row["diff_vs_mf_biased"] = d.mean()
            row["diff_ci95"] = _half_width(d)
            row["p_paired_t"] = stats.ttest_rel(x, b[metric].to_numpy()).pvalue
            row["p_wilcoxon"] = stats.wilcoxon(d).pvalue if np.any(d) else 1.0
        out.append(row)
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    """The README's table: one row per spread and method."""
    head = (
        "| spread | method | n | test RMSE (95% CI) | vs mf_biased: paired diff (95% CI) | p (t) "
        "| p (Wilcoxon) | NMI users / items |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for d in summary.to_dict("records"):
        diff = (
            f"{d['diff_vs_mf_biased']:+.3f} ({d['diff_vs_mf_biased'] - d['diff_ci95']:+.3f}, "
            f"{d['diff_vs_mf_biased'] + d['diff_ci95']:+.3f}) | {d['p_paired_t']:.2g} | "
            f"{d['p_wilcoxon']:.2g}"
            if d["method"] not in (BASELINE, "mf_kmeans")
            else ("(baseline) | | " if d["method"] == BASELINE else "biased MF's ratings | | ")
        )
        nmi = f"{d['nmi/users']:.2f} / {d['nmi/items']:.2f}" if not np.isnan(d["nmi/users"]) else ""
        lines.append(
            f"| {d['spread']:g} | {d['method']} | {d['n']} | {d['mean']:.3f} "
            f"({d['mean'] - d['ci95']:.3f}, {d['mean'] + d['ci95']:.3f}) | {diff} | {nmi} |"
        )
    return head + "\n".join(lines) + "\n"


def _half_width(x: np.ndarray) -> float:
    from scipy import stats

    if len(x) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=["tune", "report", "summarize"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--methods", default=None, help="comma list (a part of the work, to split it)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None, help="only this replicate (a part)")
    ap.add_argument("--spreads", default="0,1")
    args = ap.parse_args(argv)
    spreads = [float(s) for s in args.spreads.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.phase == "summarize":
        runs = with_biased_rows(
            pd.concat([pd.read_csv(p) for p in sorted(args.out.glob("runs_*.csv"))])
        )
        order = {m: k for k, m in enumerate(["mfdmc", BASELINE, *REPORTED[1:]])}
        runs = runs.sort_values(
            ["spread", "method"], key=lambda c: c.map(order) if c.name == "method" else c
        )
        summary = summarize(runs)
        summary.to_csv(args.out / "summary.csv", index=False)
        (args.out / "summary.md").write_text(markdown(summary))
        print(summary.to_string(index=False))
        return
    default = list(GRIDS) if args.phase == "tune" else REPORTED
    methods = args.methods.split(",") if args.methods else default
    tag = "_".join(m.removeprefix("mf_") for m in methods)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CELINE_OUTPUTS"] = tmp
        work = Path(tmp) / "runs"
        if args.phase == "tune":
            tune(methods, spreads, work).to_csv(args.out / f"tuning_{tag}.csv", index=False)
            return
        tuning = pd.concat([pd.read_csv(p) for p in sorted(args.out.glob("tuning_*.csv"))])
        chosen = choose(tuning)
        pd.Series({m: " ".join(c) for m, c in chosen.items()}).to_csv(args.out / "chosen.csv")
        seeds = range(args.seeds) if args.seed is None else [args.seed]
        runs = report(methods, spreads, seeds, chosen, work)
        if args.seed is not None:
            tag += f"_seed{args.seed}"
    runs.to_csv(args.out / f"runs_{tag}.csv", index=False)


if __name__ == "__main__":
    main()
