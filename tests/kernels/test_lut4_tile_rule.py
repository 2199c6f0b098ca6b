"""The CUDA LUT-4 GEMV's default tile (`default_tile`) against the H200 timings committed in
bench/shiftadd (v7, every tile of every measured shape, weights cycled through 4x the L2): it
must be close to the best tile on every shape, and never notably slower than the fixed tile it
replaced. CPU-only: reads the tables, launches nothing."""

from pathlib import Path

import pandas as pd
import pytest

from celine.kernels.lut4_cuda import default_tile

BENCH = Path(__file__).resolve().parents[2] / "bench" / "shiftadd"
TABLES = [
    "h200_lut4_shapes_7b/lut4_variants.csv",  # the Llama-7B layer shapes, 2 and 3 bits
    "h200_lut4_variants/v5_v6_v7.csv",  # 8192x8192 and 28672x8192
    "h200_lut4_latency_floor/lut4_variants.csv",  # K = 4096, N = 256 .. 32768
]
OLD_FIXED_TILE = "(8, 4, 1)"


def _shapes():
    t = pd.concat([pd.read_csv(BENCH / name).assign(table=name.split("/")[0]) for name in TABLES])
    t = t[t.variant == "v7"]
    groups = t.groupby(["table", "N", "K", "bits"])  # a shape timed in two runs: each on its own
    return [
        pytest.param(n, k, bits, g.set_index("cfg").us, id=f"{table}-{n}x{k}-{bits}bit")
        for (table, n, k, bits), g in groups
    ]


@pytest.mark.parametrize("n, k, bits, us", _shapes())
def test_default_tile_is_near_the_best_measured_tile(n, k, bits, us):
    chosen = us[str(default_tile(n, k))]
    # 3 bits is what the rule was read from; 2 bits prefers 2-word tiles the rule does not use
    assert chosen <= (1.05 if bits == 3 else 1.12) * us.min()
    assert chosen <= 1.02 * us[OLD_FIXED_TILE]
