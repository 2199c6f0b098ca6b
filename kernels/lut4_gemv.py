"""Triton LUT-GEMV with 4-input tables (T-MAC style) for ShiftAddLLM weights.

Same function and storage format as `lut_gemv.py` (`shiftadd_format.py`), different table size.
Why 16-entry tables instead of the paper's 256-entry ones: a lookup table is read by the 32 lanes
of a warp at 32 random keys. A 256-entry table spans every shared-memory bank several times, so
random keys collide (a few ways on average) and the lookups, not HBM, bound the kernel
(`shared/methods/shiftadd_linearized.md`, Part D). A 16-entry table fits in distinct banks, so a
warp's lookups never conflict; the price is twice the lookups (one per 4 bits instead of 8), which
still leaves about one instruction per weight bit.

Per program: BLOCK_N output rows, a split-K slice of the columns, BLOCK_W int32 words (32 columns
each) per step. Per step and bit plane b, the program builds the step's tables on chip,

    T_b[g, key] = alpha_b(g) * sum_{t<4} (2 * bit_t(key) - 1) * x[4 g + t],

with the APoT scale folded in (the Lat. layout: one scale per 8 columns and tile row group, so
every row of the tile shares it), splits each packed word into 8 nibbles (the keys) and looks them
up with `tl.gather`, which Triton lowers to on-chip (shared-memory or warp-shuffle) lookups. The
looked-up sums are accumulated in fp32; split-K partials are reduced with fp32 atomics.

Only the uniform-rows layout (`row_group % block_n == 0`) is served: narrower row groups need a
scale per row, which cannot be folded into a table shared by the tile (use `lut_gemv`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from celine.kernels.gemv_checks import KernelInputError, require
from celine.kernels.lut_gemv import _decode_apot, check_shapes, launch_grid


@triton.jit
def _lut4_gemv(
    x_ptr,
    planes_ptr,
    codes_ptr,
    y_ptr,
    N,
    KW,  # int32 words per row = K / 32
    NG,  # row groups
    words_per_split,
    Q: tl.constexpr,
    COL_GROUP: tl.constexpr,  # columns per scale (multiple of 8)
    ROW_GROUP: tl.constexpr,  # rows per scale (a multiple of BLOCK_N)
    BLOCK_N: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    m = tl.program_id(2)
    G: tl.constexpr = BLOCK_W * 8  # 4-column groups (tables) per step
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    ng = (pid_n * BLOCK_N) // ROW_GROUP
    keys = tl.arange(0, 16)
    nib = tl.arange(0, 8)
    acc = tl.zeros((G, BLOCK_N), dtype=tl.float32)
    x_row = x_ptr + m * KW * 32
    w_begin = pid_k * words_per_split
    w_end = tl.minimum(w_begin + words_per_split, KW)
    for w0 in range(w_begin, w_end, BLOCK_W):
        g = w0 * 8 + tl.arange(0, G)  # global 4-column group index
        g_ok = g < w_end * 8
        # the signed sums of every 4-column group, for all 16 keys (shared by the planes)
        sums = tl.zeros((G, 16), dtype=tl.float32)
        for t in tl.static_range(4):
            xt = tl.load(x_row + g * 4 + t, mask=g_ok, other=0.0).to(tl.float32)
            sign = (((keys >> t) & 1) * 2 - 1).to(tl.float32)
            sums += xt[:, None] * sign[None, :]
        wcols = w0 + tl.arange(0, BLOCK_W)
        ok = (wcols < w_end)[:, None] & row_ok[None, :]
        for b in tl.static_range(Q):
            code = tl.load(codes_ptr + ((g * 4) // COL_GROUP * NG + ng) * Q + b, mask=g_ok, other=0)
            table = sums * _decode_apot(code)[:, None]
            words = tl.load(
                planes_ptr + b * KW * N + wcols[:, None] * N + rows[None, :], mask=ok, other=0
            )
            key = (words[:, None, :] >> (4 * nib)[None, :, None]) & 15  # [BLOCK_W, 8, BLOCK_N]
            acc += tl.gather(table, tl.reshape(key, (G, BLOCK_N)), axis=1)
    tl.atomic_add(y_ptr + m * N + rows, tl.sum(acc, axis=0), mask=row_ok)


def lut4_gemv(
    x: torch.Tensor,
    planes: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
    block_n: int = 256,
    block_w: int = 2,
    split_k: int | None = None,
    num_warps: int = 4,
    programs: int = 4 * 132,  # split-K target when split_k is None: programs in flight
) -> torch.Tensor:
    """`y = x @ W.T` for `x [M, K]` and W in the packed format -> `[M, N]` in x's dtype."""
    m = check_shapes(x, planes, codes, col_group, row_group, kernel="lut4_gemv")
    q, kw, n = planes.shape
    require(
        block_n > 0 and block_w > 0,
        "lut4_gemv",
        f"block_n={block_n}, block_w={block_w} must be > 0",
    )
    if row_group % block_n:
        raise KernelInputError(
            f"lut4_gemv needs row_group ({row_group}) to be a multiple of block_n ({block_n}): "
            "one scale per tile row group; use lut_gemv for finer row groups"
        )
    x = x.contiguous()
    n_tiles, split_k, words_per_split = launch_grid(m, n, kw, block_n, block_w, split_k, programs)
    y = torch.zeros(m, n, dtype=torch.float32, device=x.device)
    _lut4_gemv[(n_tiles, split_k, m)](
        x,
        planes,
        codes,
        y,
        n,
        kw,
        codes.shape[1],
        words_per_split,
        Q=q,
        COL_GROUP=col_group,
        ROW_GROUP=row_group,
        BLOCK_N=block_n,
        BLOCK_W=block_w,
        num_warps=num_warps,
    )
    return y.to(x.dtype)
