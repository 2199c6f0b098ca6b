"""Pool the real-engine runs of `celine run experiment=llm_sched_vllm` (one per arrival seed,
`task.sim_seed=`) into one paired comparison: every scheduler / ltr per replicate, the
replicates of every run together. Within a run the replicates replay the same arrivals, so the
pooled n counts replays, not independent workloads; the runs' own `engine_paired` tables stay
the per-seed evidence.

    python bench/llm_sched/pool_engine_runs.py RUN_OR_RESULTS_DIR [...] > pooled.csv

A directory is a run folder (its tables/ are read) or a copy of its tables (bench/llm_sched/results/*).
"""

import sys
from pathlib import Path

import pandas as pd

from celine.experiments.llm_sched.engine import paired_over_replicates


def replicates(folder: Path) -> pd.DataFrame:
    tables = folder / "tables" if (folder / "tables").is_dir() else folder
    return pd.read_csv(tables / "serving_replicates.csv")


def main(dirs: list[str]) -> pd.DataFrame:
    parts = []
    for k, d in enumerate(dirs):
        part = replicates(Path(d))
        part["replicate"] = part["replicate"] + 1000 * k  # a pair never spans two runs
        parts.append(part)
    return paired_over_replicates(pd.concat(parts, ignore_index=True))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:]).drop(columns="per_replicate").to_csv(
        sys.stdout, index=False, float_format="%.4g"
    )
