"""Bit-serial Triton GEMV for ShiftAddLLM weights: the LUT-GEMV's function without tables.

Why it exists: `lut_gemv.py` is the paper's method (8-input tables, one lookup per packed byte)
and stays. In Triton its tables must be gathered from global memory (no addressable shared
memory), which bounds it at about 20% of copy bandwidth on an H200 (bench/shiftadd). This kernel
computes the same `y = x @ W.T` over the same packed format (`shiftadd_format.py`) with no tables
and no gathers: every program streams a `[BLOCK_W words, BLOCK_N rows]` tile of each binary plane
with coalesced loads (rows are the contiguous axis of `[q, K/32, N]`), and unpacks each int32
word's 32 bits in registers. Per output row n, plane b and 8-column scale block:

    sum_k sign_{b,n,k} x_k = 2 * sum_{k: bit=1} x_k - sum_k x_k

With one scale per tile row group (`row_group % BLOCK_N == 0`, the Lat. layout) the decoded APoT
scale (`_decode_apot`, integer ops only) is folded into the broadcast activation vector once per
program (`xs = x * alpha_b`, shared by all BLOCK_N rows), so the per-(row, bit) work is the bit
test and one fp32 add. Three formulations of that inner step (constexpr MODE, benchmarked):

- MODE 0 "select": `acc += where((word >> t) & 1, xs_t, 0)`, then `2 * acc - sum(xs)`;
- MODE 1 "signxor": move bit t to the sign bit and xor it into the bits of `-xs_t`, giving
  `+-xs_t` directly (shift, one LOP3, add);
- MODE 2 "magic": `float(0x4B000000 | (half & (1 << p))) - 2**23 = 2**p * bit` (exact), times
  `xs_t / 2**p` (one integer op per bit, the rest fp32), then `2 * acc - sum(xs)`.

When row groups are narrower than the tile (g128: 16 rows), each 8-bit block's signed sum is
scaled per element by its decoded code. Accumulation is fp32; the output has x's dtype. Split-K
partial sums are reduced with fp32 atomics. Triton 3.6 features only.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from celine.kernels.gemv_checks import require
from celine.kernels.lut_gemv import _decode_apot, check_shapes, launch_grid

MODES = {"select": 0, "signxor": 1, "magic": 2}


@triton.jit
def _bit_term(words, hi, t: tl.constexpr, xv, MODE: tl.constexpr):
    """Per-element contribution of bit t of `words` for activation vector `xv` [BLOCK_W]:
    MODE 0/2 give bit * xv (0/1 form), MODE 1 gives (2 * bit - 1) * xv (signed form)."""
    if MODE == 0:
        return tl.where(((words >> t) & 1) != 0, xv[:, None], 0.0)
    elif MODE == 1:
        sign = tl.full([], 1, tl.int32) << 31
        nx = (-xv).to(tl.int32, bitcast=True)
        return (((words << (31 - t)) & sign) ^ nx[:, None]).to(tl.float32, bitcast=True)
    else:
        p: tl.constexpr = t % 16
        if t >= 16:
            v = ((hi & (1 << p)) | 0x4B000000).to(tl.float32, bitcast=True) - 8388608.0
        else:
            v = ((words & (1 << p)) | 0x4B000000).to(tl.float32, bitcast=True) - 8388608.0
        return v * (xv * (1.0 / (1 << p)))[:, None]


@triton.jit
def _bitserial_gemv(
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
    ROW_GROUP: tl.constexpr,  # rows per scale
    ROW_UNIFORM: tl.constexpr,  # ROW_GROUP % BLOCK_N == 0: one scale row per tile
    BLOCK_N: tl.constexpr,
    BLOCK_W: tl.constexpr,
    MODE: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    m = tl.program_id(2)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    acc = tl.zeros((BLOCK_W, BLOCK_N), dtype=tl.float32)
    corr = tl.zeros((BLOCK_W,), dtype=tl.float32)  # sum of xs for the 0/1 forms (uniform rows)
    x_row = x_ptr + m * KW * 32
    w_begin = pid_k * words_per_split
    w_end = tl.minimum(w_begin + words_per_split, KW)
    for w0 in range(w_begin, w_end, BLOCK_W):
        wcols = w0 + tl.arange(0, BLOCK_W)
        w_ok = wcols < w_end
        ok = w_ok[:, None] & row_ok[None, :]
        for b in tl.static_range(Q):
            words = tl.load(
                planes_ptr + b * KW * N + wcols[:, None] * N + rows[None, :], mask=ok, other=0
            )
            hi = words >> 16
            for i in tl.static_range(4):  # byte i: columns 32 w + 8 i ... + 7, one scale
                kg = (wcols * 32 + 8 * i) // COL_GROUP
                if ROW_UNIFORM:
                    ng = (pid_n * BLOCK_N) // ROW_GROUP
                    code = tl.load(codes_ptr + (kg * NG + ng) * Q + b, mask=w_ok, other=0)
                    alpha = _decode_apot(code)  # [BLOCK_W], shared by the tile's rows
                    for j in tl.static_range(8):
                        xv = tl.load(x_row + wcols * 32 + 8 * i + j, mask=w_ok, other=0.0)
                        xs = xv.to(tl.float32) * alpha
                        acc += _bit_term(words, hi, 8 * i + j, xs, MODE)
                        if MODE != 1:
                            corr += xs
                else:
                    blk = tl.zeros((BLOCK_W, BLOCK_N), dtype=tl.float32)
                    xsum = tl.zeros((BLOCK_W,), dtype=tl.float32)
                    for j in tl.static_range(8):
                        xv = tl.load(x_row + wcols * 32 + 8 * i + j, mask=w_ok, other=0.0)
                        xv = xv.to(tl.float32)
                        blk += _bit_term(words, hi, 8 * i + j, xv, MODE)
                        xsum += xv
                    if MODE != 1:
                        blk = 2.0 * blk - xsum[:, None]
                    ng = rows // ROW_GROUP
                    code = tl.load(
                        codes_ptr + (kg[:, None] * NG + ng[None, :]) * Q + b, mask=ok, other=0
                    )
                    acc += blk * _decode_apot(code)
    y = tl.sum(acc, axis=0)
    if ROW_UNIFORM and MODE != 1:
        y = 2.0 * y - tl.sum(corr, axis=0)
    tl.atomic_add(y_ptr + m * N + rows, y, mask=row_ok)


def bitserial_gemv(
    x: torch.Tensor,
    planes: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
    block_n: int = 1024,
    block_w: int = 2,
    split_k: int | None = None,
    num_warps: int = 4,
    mode: str = "signxor",  # the fastest of the bench list on an H200 (with the tile above)
    programs: int = 8 * 132,  # split-K target when split_k is None: programs in flight
) -> torch.Tensor:
    """`y = x @ W.T` for `x [M, K]` and W in the packed format -> `[M, N]` in x's dtype.

    Same arguments as `lut_gemv` up to its table options (`lut_dtype`, `on_chip`, `block_w`
    counts int32 words in both); `mode` picks the inner bit step (module docstring)."""
    m = check_shapes(x, planes, codes, col_group, row_group, kernel="bitserial_gemv")
    q, kw, n = planes.shape
    require(mode in MODES, "bitserial_gemv", f"mode={mode!r} is not one of {sorted(MODES)}")
    require(block_n > 0 and block_w > 0, "bitserial_gemv", "block_n and block_w must be > 0")
    x = x.contiguous()
    n_tiles, split_k, words_per_split = launch_grid(m, n, kw, block_n, block_w, split_k, programs)
    y = torch.zeros(m, n, dtype=torch.float32, device=x.device)
    _bitserial_gemv[(n_tiles, split_k, m)](
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
        ROW_UNIFORM=row_group % block_n == 0,
        BLOCK_N=block_n,
        BLOCK_W=block_w,
        MODE=MODES[mode],
        num_warps=num_warps,
    )
    return y.to(x.dtype)
