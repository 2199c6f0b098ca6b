"""Defence grid: every defence setting x attack x seed, each cell a Celine run (`celine.api.multirun`:
one Hydra multirun per setting, every cell an MLflow run under the setting's parent run), rows to
a CSV with a per-(attack, setting) summary and a bar plot. The backdoored model of each
(attack, seed) is trained once and cached under outputs/ (every setting finds it there).

    python -m celine.experiments.fmt.grid --attacks badnets blend wanet --seeds 0 1 2 3 4 \
        --out outputs/fmt_grid.csv hardware=cuda hydra/launcher=joblib hydra.launcher.n_jobs=8

Anything after the options is a Hydra override passed to every run (model.width=0.5,
task.poison_ratio=0.05, hardware=cuda, a launcher). A setting is a list of Hydra overrides, the
same you would type after `celine run task=fmt`; `GRID` is the README's width-1.0 table, and
`--settings` picks some of it by name. One setting by hand is the same sweep:

    celine run -m task=fmt method=fmt_random_prune method.prune_ratio=0.125,0.25,0.3125 \
        task.attack=badnets,blend,wanet seed=0,1,2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from celine import api

from .plots import grid_bars

GRID: dict[str, list[str]] = {  # the README's width-1.0 table  # fmt: skip
    "none": ["method=fmt_none"],
    "finetune": ["method=fmt_finetune"],
    "random_1/8": ["method=fmt_random_prune", "method.prune_ratio=0.125"],
    "random_1/4": ["method=fmt_random_prune", "method.prune_ratio=0.25"],
    "random_5/16": ["method=fmt_random_prune", "method.prune_ratio=0.3125"],
    "fmt_1/8": ["method=fmt", "method.prune_ratio=0.125"],
    "fmt_1/4": ["method=fmt", "method.prune_ratio=0.25"],
    "fmt_5/16": ["method=fmt", "method.prune_ratio=0.3125"],
    "fmt_eps.2_1/4": [
        "method=fmt",
        "method.eps=0.2",
        "method.alpha=0.2",
        "method.prune_ratio=0.25",
    ],
    "fmt_eps.3_1/4": [
        "method=fmt",
        "method.eps=0.3",
        "method.alpha=0.3",
        "method.prune_ratio=0.25",
    ],
    "fmt_mode_eps.1_1/4": ["method=fmt", "method.score=mode_share", "method.prune_ratio=0.25"],
    "fmt_mode_eps.3_1/4": [
        "method=fmt",
        "method.score=mode_share",
        "method.eps=0.3",
        "method.alpha=0.3",
        "method.prune_ratio=0.25",
    ],
    "fine_pruning": ["method=fmt_fine_pruning"],
    "nad": ["method=fmt_nad"],
    "oracle_1/4": ["method=fmt_oracle", "method.prune_ratio=0.25"],
}

COLUMNS = {  # row column -> the run's metric
    "acc": "acc", "asr": "asr", "ra": "ra", "val_acc": "val_acc", "before_acc": "before/acc",
    "before_asr": "before/asr", "removed": "backdoor_maps_removed", "maps_pruned": "maps_pruned",
}  # fmt: skip


def run_setting(name: str, setting: list[str], attacks: list[str], seeds: list[int],
                extra: list[str]) -> list[dict]:  # fmt: skip
    """One setting over attacks x seeds as one multirun; a row per cell (failed cells too)."""
    results = api.multirun([
        "task=fmt", *setting, f"task.attack={','.join(attacks)}",
        f"seed={','.join(map(str, seeds))}", f"run_name='{name}'", *extra,
    ])  # fmt: skip
    rows = []
    for r in results:
        cfg = r.config if (r.run_dir / "resolved_config.yaml").is_file() else {}
        row = {
            "attack": cfg.get("task", {}).get("attack"), "seed": r.seed,
            "width": cfg.get("model", {}).get("width"), "setting": name, "method": r.method,
            "status": r.status, "run_id": r.run_id, "secs": r.duration_s,
            **{col: r.metrics.get(key, float("nan")) for col, key in COLUMNS.items()},
        }  # fmt: skip
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in row.items()), flush=True)  # fmt: skip
        rows.append(row)
    return rows


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (attack, setting): acc, pts (vs the backdoored model), asr, ra."""
    df = df[df.status == "FINISHED"]
    df = df.assign(pts=100 * (df.acc - df.before_acc))
    g = df.groupby(["attack", "setting"], sort=False)
    out = g[["acc", "pts", "val_acc", "asr", "ra", "removed"]].mean()
    out["seeds"] = g.size()
    out["asr_per_seed"] = g.asr.apply(lambda s: " ".join(f"{v:.2f}" for v in s))
    return out.round(3)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attacks", nargs="+", default=["badnets", "blend", "wanet"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--settings", nargs="+", default=list(GRID), choices=list(GRID),
                   metavar="NAME", help="settings of GRID to run (default: all)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("outputs/fmt_grid.csv"))
    a, extra = p.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    rows = [
        row for name in a.settings
        for row in run_setting(name, GRID[name], a.attacks, a.seeds, extra)
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    table = summary(df)
    table.to_csv(a.out.with_name(a.out.stem + "_summary.csv"))
    grid_bars(table).savefig(a.out.with_suffix(".png"), dpi=120)
    pd.set_option("display.width", 200)
    print(table.to_string())
    failed = int((df.status != "FINISHED").sum())
    if failed:
        print(f"{failed} of {len(df)} runs did not finish (status column)")
    return df


if __name__ == "__main__":
    main()
