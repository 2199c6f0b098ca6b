"""The CUDA LUT-4 GEMV's default tile (`default_tile`) against the H200 timings committed in
bench/shiftadd (v7, every tile of every measured shape, weights cycled through 4x the L2): it
must be close to the best tile on every shape, and never notably slower than the fixed tile it
replaced. CPU-only: reads the tables, launches nothing."""

from pathlib import Path

import pandas as pd
import pytest
import torch

from celine.kernels.gemv_checks import KernelInputError
from celine.kernels.lut4_cuda import check_lut4_cuda_inputs, default_tile, tile_for

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


def test_the_rule_counts_every_input_row_of_the_grid():
    # 4096x4096 takes two tiles alone (512 blocks); 8 rows make 4096 blocks at two, so four
    assert default_tile(4096, 4096)[1] == 2
    assert default_tile(4096, 4096, m=4)[1] == 2
    assert default_tile(4096, 4096, m=8)[1] == 4


def test_fine_row_groups_get_fewer_tiles_not_a_refusal():
    # at batch 4 the rule asks for four tiles, whose scales (104 groups of 20 rows x 4 planes)
    # overflow the block's buffer: the call takes two tiles and passes the kernel's checks
    n, k, q, rg = 8192, 4096, 4, 20
    planes = torch.zeros(q, k // 32, n, dtype=torch.int32)
    codes = torch.zeros(k // 8, -(-n // rg), q, dtype=torch.int32)
    x = torch.zeros(4, k, dtype=torch.bfloat16)
    assert default_tile(n, k, m=4) == (8, 4, 1)
    assert tile_for(4, planes, codes, rg) == (8, 2, 1)
    check_lut4_cuda_inputs(x, planes, codes, 8, rg, *tile_for(4, planes, codes, rg))
    with pytest.raises(KernelInputError, match="row_iters=4"):
        check_lut4_cuda_inputs(x, planes, codes, 8, rg, *default_tile(n, k, m=4))
