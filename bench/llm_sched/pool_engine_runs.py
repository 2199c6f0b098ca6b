"""Pool the real-engine runs of `celine run experiment=llm_sched_vllm` (one per arrival seed,
`task.sim_seed=`): one row per run (the engine's FCFS / LTR and oracle / LTR at each load,
paired over its replicates, and the simulator's error range and rank agreement), then every
scheduler / ltr paired over the replicates of all runs together. Within a run the replicates
replay the same arrivals, so the pooled n counts replays, not independent workloads.

    python bench/llm_sched/pool_engine_runs.py RUN_OR_RESULTS_DIR [...]

A directory is a run folder (its tables/ are read) or a copy of its tables (bench/llm_sched/results/*).
"""

import sys
from pathlib import Path

import pandas as pd

from celine.experiments.llm_sched.engine import paired_over_replicates


def tables(folder: Path) -> Path:
    return folder / "tables" if (folder / "tables").is_dir() else folder


def per_run(folder: Path) -> list[dict]:
    paired = pd.read_csv(tables(folder) / "engine_paired.csv").set_index(["workload", "scheduler"])
    sim = pd.read_csv(tables(folder) / "engine_vs_sim.csv")
    rows = []
    for wname, g in sim.groupby("workload", sort=False):
        row = dict(run=folder.name, workload=wname)
        for name in ("fcfs", "oracle_sjf"):
            r = paired.loc[(wname, name)]
            row[f"{name}/ltr"] = (
                f"{r['ratio']:.2f} [{r['low']:.2f}, {r['high']:.2f}] p={r['p']:.3f}"
            )
        row["sim_error"] = f"{g['sim_error'].min():+.0%} .. {g['sim_error'].max():+.0%}"
        row["sim_order_tau"] = f"{g['order_tau'].iloc[0]:.1f}"
        rows.append(row)
    return rows


def pooled(dirs: list[Path]) -> pd.DataFrame:
    parts = []
    for k, d in enumerate(dirs):
        part = pd.read_csv(tables(d) / "serving_replicates.csv")
        part["replicate"] = part["replicate"] + 1000 * k  # a pair never spans two runs
        parts.append(part)
    return paired_over_replicates(pd.concat(parts, ignore_index=True))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    dirs = [Path(a) for a in sys.argv[1:]]
    pd.set_option("display.width", 200)
    runs = pd.DataFrame([row for d in dirs for row in per_run(d)])
    print(runs.to_string(index=False))
    print()
    print(pooled(dirs).drop(columns="per_replicate").to_string(index=False, float_format="%.3g"))
