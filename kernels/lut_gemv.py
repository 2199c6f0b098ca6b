"""Triton LUT-GEMV for ShiftAddLLM weights (format: `shiftadd_format.py`).

Two kernels, as in the paper's CUDA kernel but in Triton:

1. `_build_luts`: for every 8 consecutive activations of every input row, the 256 signed sums
   `T[key] = sum_j (2 * bit_j(key) - 1) * x_j` (one table per 8 inputs, K/8 tables per row).
2. `_lut_gemv`: every program owns BLOCK_N output rows and a slice of K (split-K, reduced with
   atomics). It streams the packed binary planes as int32 words, splits each word into four
   8-bit keys, looks the keys up in the tables (one lookup replaces 8 multiply-adds) and scales
   each looked-up sum by its block's APoT scale.

The scale is decoded from its APoT code with integer ops only (each term's power of two is built
from its exponent bits: a shift), once per tile, and applied to the looked-up sums as one fp32
multiply by the exactly representable `sum_t s_t 2**e_t`. The paper's CUDA kernel instead adds
each exponent to the fp16 bit pattern of the looked-up sum (three shifts per lookup); the two are
the same function up to fp32 rounding, and one multiply is cheaper than three integer adds here.

The tables live in global memory (K/8 x 256 entries per row, L1/L2 resident) and are gathered
with `tl.load`, since Triton has no addressable shared memory; `on_chip=True` instead loads each
tile's tables into registers and looks them up with `tl.gather` (measured slower on an H200, and
one large tile crashes Triton 3.6's compiler). Triton 3.6 features only. Accumulation is fp32;
the output has the activation's dtype. Measured (bench/shiftadd): about 0.56e12 lookups/s on an
H200 whatever the tile, i.e. the gathers, not HBM, bound it (about 20% of copy bandwidth).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from celine.kernels.gemv_checks import check_gemv_inputs, require


@triton.jit
def _build_luts(x_ptr, lut_ptr, KB, BLOCK_KB: tl.constexpr):
    m = tl.program_id(1)
    kb = tl.program_id(0) * BLOCK_KB + tl.arange(0, BLOCK_KB)
    keys = tl.arange(0, 256)
    mask = kb < KB
    table = tl.zeros((BLOCK_KB, 256), dtype=tl.float32)
    for j in tl.static_range(8):
        xj = tl.load(x_ptr + m * KB * 8 + kb * 8 + j, mask=mask, other=0.0).to(tl.float32)
        sign = (((keys >> j) & 1) * 2 - 1).to(tl.float32)
        table += xj[:, None] * sign[None, :]
    out = lut_ptr + m * KB * 256 + kb[:, None] * 256 + keys[None, :]
    tl.store(out, table.to(lut_ptr.dtype.element_ty), mask=mask[:, None])


@triton.jit
def _decode_apot(code):
    """int32 APoT codes -> fp32 scales, built from exponent bits (integer shifts only)."""
    val = tl.zeros(code.shape, dtype=tl.float32)
    for t in tl.static_range(3):
        byte = (code >> (8 * t)) & 255
        mag = byte & 127
        pow2 = ((mag - 64 + 127) << 23).to(tl.float32, bitcast=True)
        term = tl.where((byte >> 7) == 1, -pow2, pow2)
        val += tl.where(mag == 0, 0.0, term)
    return val


@triton.jit
def _lut_gemv(
    lut_ptr,
    planes_ptr,
    codes_ptr,
    y_ptr,
    N,
    KW,  # int32 words per row = K / 32
    NG,  # row groups
    words_per_split,
    Q: tl.constexpr,
    COL_GROUP: tl.constexpr,  # columns per scale (multiple of 8)
    ROW_GROUP: tl.constexpr,  # rows per scale
    ROW_UNIFORM: tl.constexpr,  # ROW_GROUP % BLOCK_N == 0: one scale row per tile
    BLOCK_N: tl.constexpr,
    BLOCK_W: tl.constexpr,
    ON_CHIP: tl.constexpr,  # copy each tile's tables on chip and look up with tl.gather
):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    m = tl.program_id(2)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    # tiles are [BLOCK_W words, BLOCK_N rows] with rows contiguous in memory, so a warp's lanes
    # hold different rows of one word column and gather from the same 8-input table
    acc = tl.zeros((BLOCK_W, BLOCK_N), dtype=tl.float32)
    lut_row = lut_ptr + m * KW * 4 * 256
    w_begin = pid_k * words_per_split
    w_end = tl.minimum(w_begin + words_per_split, KW)
    for w0 in range(w_begin, w_end, BLOCK_W):
        wcols = w0 + tl.arange(0, BLOCK_W)
        w_ok = wcols < w_end
        ok = w_ok[:, None] & row_ok[None, :]
        for i in tl.static_range(4):
            kb = wcols * 4 + i
            if ON_CHIP:  # the BLOCK_W tables of byte i, one coalesced load, reused by all planes
                entries = tl.arange(0, 256)
                tables = tl.load(
                    lut_row + kb[:, None] * 256 + entries[None, :], mask=w_ok[:, None], other=0.0
                )
            for b in tl.static_range(Q):
                words = tl.load(
                    planes_ptr + b * KW * N + wcols[:, None] * N + rows[None, :], mask=ok, other=0
                )
                key = (words >> (8 * i)) & 255
                if ON_CHIP:
                    looked = tl.gather(tables, key, axis=1)
                else:
                    looked = tl.load(lut_row + kb[:, None] * 256 + key, mask=ok, other=0.0)
                kg = (kb * 8) // COL_GROUP
                if ROW_UNIFORM:
                    ng = (pid_n * BLOCK_N) // ROW_GROUP
                    code = tl.load(codes_ptr + (kg * NG + ng) * Q + b, mask=w_ok, other=0)
                    acc += looked.to(tl.float32) * _decode_apot(code)[:, None]
                else:
                    ng = rows // ROW_GROUP
                    code = tl.load(
                        codes_ptr + (kg[:, None] * NG + ng[None, :]) * Q + b, mask=ok, other=0
                    )
                    acc += looked.to(tl.float32) * _decode_apot(code)
    y = tl.sum(acc, axis=0)
    tl.atomic_add(y_ptr + m * N + rows, y, mask=row_ok)


def build_luts(x: torch.Tensor, lut_dtype: torch.dtype | None = None) -> torch.Tensor:
    """`x [M, K]` -> tables `[M, K/8, 256]` (dtype: x's, or `lut_dtype`)."""
    m, k = x.shape
    x = x.contiguous()
    luts = torch.empty(m, k // 8, 256, dtype=lut_dtype or x.dtype, device=x.device)
    block_kb = 8
    _build_luts[(triton.cdiv(k // 8, block_kb), m)](x, luts, k // 8, BLOCK_KB=block_kb)
    return luts


def check_shapes(
    x: torch.Tensor, planes: torch.Tensor, codes: torch.Tensor, col_group: int, row_group: int,
    kernel: str = "lut_gemv",
) -> int:  # fmt: skip
    """Every Triton GEMV's input checks (`gemv_checks.check_gemv_inputs`); returns M."""
    return check_gemv_inputs(kernel, x, planes, codes, col_group, row_group)[0]


def launch_grid(m, n, kw, block_n, block_w, split_k, programs) -> tuple[int, int, int]:
    """(row tiles, split-K, int32 words per split): enough programs to fill the GPU even at
    batch 1, each split a whole number of BLOCK_W word tiles."""
    n_tiles = triton.cdiv(n, block_n)
    if split_k is None:
        split_k = max(1, min(triton.cdiv(kw, block_w), triton.cdiv(programs, n_tiles * m)))
    words_per_split = triton.cdiv(triton.cdiv(kw, split_k), block_w) * block_w
    return n_tiles, triton.cdiv(kw, words_per_split), words_per_split


def lut_gemv(
    x: torch.Tensor,
    planes: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
    block_n: int = 256,  # the fastest of bench/shiftadd/gemv_bench.py's tiles on an H200
    block_w: int = 4,
    split_k: int | None = None,
    lut_dtype: torch.dtype | None = None,
    num_warps: int = 4,
    on_chip: bool = False,  # tl.gather from on-chip tables: measured slower on an H200
) -> torch.Tensor:
    """`y = x @ W.T` for `x [M, K]` and W in the packed format -> `[M, N]` in x's dtype."""
    m = check_shapes(x, planes, codes, col_group, row_group)
    q, kw, n = planes.shape
    require(block_n > 0 and block_w > 0, "lut_gemv", f"block_n={block_n}, block_w={block_w}")
    require(split_k is None or split_k > 0, "lut_gemv", f"split_k={split_k} must be > 0")
    luts = build_luts(x, lut_dtype)
    n_tiles, split_k, words_per_split = launch_grid(m, n, kw, block_n, block_w, split_k, 4 * 132)
    y = torch.zeros(m, n, dtype=torch.float32, device=x.device)
    _lut_gemv[(n_tiles, split_k, m)](
        luts,
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
        ROW_UNIFORM=row_group % block_n == 0,
        BLOCK_N=block_n,
        BLOCK_W=block_w,
        ON_CHIP=on_chip,
        num_warps=num_warps,
    )
    return y.to(x.dtype)
