"""Defence grid: every (attack, seed) x defence setting in-process, one worker process per
(attack, seed), rows to a CSV. It runs the room's own method classes on the task's cached
backdoored model, exactly as `celine run` does, but without Hydra/MLflow per run, so a grid of
hundreds of defences fits a few minutes of one GPU (a `celine run -m` sweep pays a process and an
MLflow run per cell). Use it to explore; report what you keep with `celine run -m`.

    python -m celine.experiments.fmt.grid --attacks badnets blend wanet --seeds 0 1 2 3 4 \
        --width 1.0 --device cuda --workers 8 --out outputs/fmt_grid.csv

Each grid entry is `name:method:key=value,...` (method = a registered fmt method); the default
grid is `DEFAULT_GRID`.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import yaml

from .plots import grid_bars

DEFAULT_GRID = [  # the README's width-1.0 table
    "none:fmt_none:",
    "finetune:fmt_finetune:",
    "random_1/8:fmt_random_prune:prune_ratio=0.125",
    "random_1/4:fmt_random_prune:prune_ratio=0.25",
    "random_5/16:fmt_random_prune:prune_ratio=0.3125",
    "fmt_1/8:fmt:prune_ratio=0.125",
    "fmt_1/4:fmt:prune_ratio=0.25",
    "fmt_5/16:fmt:prune_ratio=0.3125",
    "fmt_eps.2_1/4:fmt:eps=0.2,alpha=0.2,prune_ratio=0.25",
    "fmt_eps.3_1/4:fmt:eps=0.3,alpha=0.3,prune_ratio=0.25",
    "fmt_mode_eps.1_1/4:fmt:score=mode_share,prune_ratio=0.25",
    "fmt_mode_eps.3_1/4:fmt:score=mode_share,eps=0.3,alpha=0.3,prune_ratio=0.25",
    "fine_pruning:fmt_fine_pruning:",
    "nad:fmt_nad:",
    "oracle_1/4:fmt_oracle:prune_ratio=0.25",
]


def _value(v: str):
    return yaml.safe_load(v)  # "0.25" -> 0.25, "true" -> True, "null" -> None, "sign" -> "sign"


def parse_entry(entry: str) -> tuple[str, str, dict]:
    name, method, kv = entry.split(":", 2)
    overrides = dict(p.split("=", 1) for p in kv.split(",") if p)
    return name, method, {k: _value(v) for k, v in overrides.items()}


def _methods() -> dict:
    """method name -> (config class, defence class), as registered in the room's __init__."""
    from . import config as C
    from . import method as M

    return {
        "fmt": (C.FMTConfig, M.FMT), "fmt_none": (C.NoDefenseConfig, M.NoDefense),
        "fmt_finetune": (C.FineTuneOnlyConfig, M.FineTuneOnly),
        "fmt_random_prune": (C.RandomPruneConfig, M.RandomPrune),
        "fmt_fine_pruning": (C.FinePruningConfig, M.FinePruning),
        "fmt_oracle": (C.OracleConfig, M.Oracle), "fmt_nad": (C.NADConfig, M.NAD),
    }  # fmt: skip


def _check_grid(grid: list[str]) -> list[tuple[str, str, dict]]:
    """Every entry parsed and its config built once before any model trains, so a typo fails
    at once, naming the entry."""
    from celine.api import ConfigError

    methods, parsed = _methods(), []
    for entry in grid:
        try:
            name, method, overrides = parse_entry(entry)
        except ValueError:
            raise ConfigError("--grid", entry, "name:method:key=value,...") from None
        if method not in methods:
            raise ConfigError("--grid", entry, f"method one of {sorted(methods)}")
        try:
            methods[method][0](**overrides)
        except TypeError as err:
            raise ConfigError("--grid", entry, f"keys of {method}'s config ({err})") from None
        parsed.append((name, method, overrides))
    return parsed


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # workers share the cores


def _run_cell(attack: str, seed: int, width: float, arch: str, device: str, grid: list,
              outputs: str, task_overrides: dict) -> list[dict]:  # fmt: skip
    from .task import offline_task

    methods = _methods()
    task = offline_task(attack, seed, arch=arch, width=width, outputs=outputs, device=device,
                        **task_overrides)  # fmt: skip
    ctx = task.ctx
    rows = []
    for name, method, overrides in grid:
        cfg_cls, impl_cls = methods[method]
        impl = impl_cls(cfg_cls(**overrides))
        t0 = time.perf_counter()
        result = impl.run(ctx)
        m = result.metrics
        row = dict(attack=attack, seed=seed, width=width, setting=name, method=method,
                   acc=m["acc"], asr=m["asr"], ra=m["ra"], val_acc=m["val_acc"],
                   before_acc=m["before/acc"],
                   before_asr=m["before/asr"], removed=m["backdoor_maps_removed"],
                   maps_pruned=m["maps_pruned"], secs=time.perf_counter() - t0)  # fmt: skip
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in row.items()), flush=True)  # fmt: skip
        rows.append(row)
    return rows


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (attack, setting): acc, pts (vs the backdoored model), asr, ra."""
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
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--grid", nargs="+", default=DEFAULT_GRID)
    p.add_argument("--task", nargs="*", default=[], help="task overrides key=value")
    p.add_argument("--outputs", default="outputs")
    p.add_argument("--out", type=Path, default=Path("outputs/fmt_grid.csv"))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    task_overrides = {k: _value(v) for k, v in (t.split("=", 1) for t in a.task)}
    cells = list(itertools.product(a.attacks, a.seeds))
    grid = _check_grid(a.grid)
    args = [(att, s, a.width, a.arch, a.device, grid, a.outputs, task_overrides)
            for att, s in cells]  # fmt: skip
    if a.workers > 1:
        import multiprocessing as mp

        spawn = mp.get_context("spawn")
        with ProcessPoolExecutor(a.workers, mp_context=spawn, initializer=_one_thread) as ex:
            results = list(ex.map(_run_cell, *zip(*args, strict=True)))
    else:
        results = [_run_cell(*x) for x in args]
    df = pd.DataFrame([r for rows in results for r in rows])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    table = summary(df)
    table.to_csv(a.out.with_name(a.out.stem + "_summary.csv"))
    grid_bars(table).savefig(a.out.with_suffix(".png"), dpi=120)
    pd.set_option("display.width", 200)
    print(table.to_string())
    return df


if __name__ == "__main__":
    main()
