"""The batch-1 end-to-end speed-up of the packed 7B-shaped model over bf16, over independent runs
(issue #28): every committed H200 run of `e2e_decode.py --fused ... --modes compile` in which
`ShiftAddLinear` ran the shipped tile rule, one ratio per run (bf16 fused and packed fused
decoded in the same process), their mean with a 95% t-interval (`celine.stats`) and the paired
t-test of log tokens/s against bf16 over the runs. Reads committed CSVs only, runs on any machine:

    python bench/shiftadd/e2e_interval.py
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from celine.stats import describe, fmt_p, paired

HERE = Path(__file__).resolve().parent
# (folder, what ran): batch-1 compiled runs with the per-shape tile (`lut4_cuda.default_tile`)
RUNS = {
    "h200_e2e_tile_rule": "round 3, first run with the tile rule",
    "h200_e2e_no_gemv": "round 3, the run that also timed the step without GEMVs",
    "h200_round5/batches_rule_without_m": "round 5, before the rule counted batch rows",
    "h200_round5/batches_rule_with_m": "round 5",
    "h200_round5/rep_a": "round 5",
    "h200_round5/rep_b": "round 5, 2 bits too",
    "h200_round5/rep_c": "round 5, 2 bits too",
}
# the three runs before the rule, every layer at tile (8, 4, 1)
FIXED_TILE_RUNS = ["h200_e2e_fused", "h200_e2e_7b_repeats/rep1", "h200_e2e_7b_repeats/rep2"]
TARGET = 2.5


def batch1(folder: str) -> pd.Series:
    t = pd.read_csv(HERE / folder / "e2e_decode.csv")
    t = t[(t.batch == 1) & (t["mode"] == "compile")]
    return t.set_index("model").tokens_per_s


def summarize(label: str, folders: list[str], model: str) -> None:
    runs = {f: batch1(f) for f in folders}
    runs = {f: r for f, r in runs.items() if model in r}
    ratio = {f: r[model] / r["bf16 fused"] for f, r in runs.items()}
    s = describe(ratio.values())
    test = paired(
        {f: math.log(r[model]) for f, r in runs.items()},
        {f: math.log(r["bf16 fused"]) for f, r in runs.items()},
    )
    print(f"{label}: {model} / bf16 fused, batch 1, compiled")
    for f, v in ratio.items():
        print(f"  {v:.3f}  {f}")
    print(
        f"  n={s.n} runs: mean {s.mean:.3f}x, 95% t-interval [{s.low:.3f}, {s.high:.3f}], "
        f"sd {s.sd:.3f}; paired t-test of log tokens/s vs bf16: p {fmt_p(test.p)}; "
        f"the {TARGET}x target {'inside' if s.low <= TARGET <= s.high else 'outside'} the interval\n"
    )


def main() -> None:
    summarize("tile rule (shipped)", list(RUNS), "3-bit fused")
    summarize("tile rule (shipped)", list(RUNS), "2-bit fused")
    summarize("fixed tile (8, 4, 1), before the rule", FIXED_TILE_RUNS, "3-bit fused")


if __name__ == "__main__":
    main()
