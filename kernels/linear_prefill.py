"""Prefill (whole prompt) of Linearized-LLM's augmented linear attention, as one Triton kernel.

The function is `experiments/linearized/attention.py`'s chunked form, per (batch row, head), with
q̂ = q/|q| and k̂ = k/|k| normalised inside the kernel, chunks of C tokens:

    o_i = sum_{j in chunk(i), j <= i} ReLU(q̂_i.k̂_j)^2 v_j            (local)
        + alpha * q̂_i S_{chunk(i)},  S_c = sum_{chunks c' < c} K̂_c'^T V_c'   (global)
        + sum_{t=0..half} w[half - t] v_{i-t}                         (masked depthwise conv on V)

One program owns one (row, head) and one block of BLOCK_V value columns and walks the chunks in
order, S held in registers (fp32), so nothing of size O(T x D x D) is ever written (the eager form
materialises every chunk's state and their cumsum). Per chunk it does four tensor-core products:
Q̂K̂^T (the local scores), scores @ V, Q̂ S, and the conv as a banded Toeplitz matrix of the taps
over this chunk's and the previous chunk's values (half < C, so no older value is in reach).
The final S (completed chunks only, as the decode state keeps it) is written when asked, so a
prompt's prefill hands its state to `kernels/linear_decode.py`.

Why not flash-linear-attention: see `linear_decode.py` (squared ReLU scores inside the chunk, S one
chunk behind and the conv on V: no fla kernel computes this function).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from celine.kernels.gemv_checks import require


@triton.jit
def _aug_linear_prefill(
    q_ptr, k_ptr, v_ptr, out_ptr,  # [B, H, T, D] / [B, H, T, DV], contiguous
    w_ptr,  # [H, KW] conv taps (only 0..HALF used: the masked, causal half)
    alpha_ptr,  # scalar
    s_ptr,  # [B, H, D, DV] fp32: the final state over completed chunks (if STORE_S)
    T, H, KW, DV,
    D: tl.constexpr, C: tl.constexpr, BLOCK_V: tl.constexpr, HALF: tl.constexpr,
    GLOBAL: tl.constexpr, CONV: tl.constexpr, STORE_S: tl.constexpr, IEEE: tl.constexpr,
    EPS: tl.constexpr,
):  # fmt: skip
    bh = tl.program_id(0)
    h = bh % H
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    col_ok = cols < DV
    i = tl.arange(0, C)
    d = tl.arange(0, D)
    prec: tl.constexpr = "ieee" if IEEE else "tf32"
    causal = i[:, None] >= i[None, :]
    if CONV:
        # Toeplitz bands: row i, column j of this chunk is t = i - j; of the previous one t = i + C - j
        t_cur = i[:, None] - i[None, :]
        t_prev = i[:, None] + C - i[None, :]
        ok_cur = (t_cur >= 0) & (t_cur <= HALF)
        ok_prev = t_prev <= HALF
        taps_cur = tl.load(w_ptr + h * KW + HALF - t_cur, mask=ok_cur, other=0.0)
        taps_prev = tl.load(w_ptr + h * KW + HALF - t_prev, mask=ok_prev, other=0.0)
        taps_cur = taps_cur.to(v_ptr.dtype.element_ty)
        taps_prev = taps_prev.to(v_ptr.dtype.element_ty)
    alpha = tl.load(alpha_ptr).to(tl.float32)
    S = tl.zeros((D, BLOCK_V), dtype=tl.float32)
    qk_base = bh * T * D
    v_base = bh * T * DV
    for c in range(0, tl.cdiv(T, C)):
        rows = c * C + i
        row_ok = rows < T
        qk_off = qk_base + rows[:, None] * D + d[None, :]
        q = tl.load(q_ptr + qk_off, mask=row_ok[:, None], other=0.0).to(tl.float32)
        k = tl.load(k_ptr + qk_off, mask=row_ok[:, None], other=0.0).to(tl.float32)
        q = q / tl.maximum(tl.sqrt(tl.sum(q * q, 1)), EPS)[:, None]
        k = k / tl.maximum(tl.sqrt(tl.sum(k * k, 1)), EPS)[:, None]
        q = q.to(v_ptr.dtype.element_ty)
        k = k.to(v_ptr.dtype.element_ty)
        v_off = v_base + rows[:, None] * DV + cols[None, :]
        v = tl.load(v_ptr + v_off, mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=prec)
        s = tl.where(causal, tl.maximum(s, 0.0), 0.0)
        o = tl.dot((s * s).to(v.dtype), v, input_precision=prec)
        if GLOBAL:
            o += alpha * tl.dot(q, S.to(v.dtype), input_precision=prec)
        if CONV:
            prev_rows = rows - C
            v_prev = tl.load(v_ptr + v_off - C * DV,
                             mask=(prev_rows >= 0)[:, None] & col_ok[None, :], other=0.0)  # fmt: skip
            o += tl.dot(taps_cur, v, input_precision=prec)
            o += tl.dot(taps_prev, v_prev, input_precision=prec)
        tl.store(out_ptr + v_off, o.to(out_ptr.dtype.element_ty),
                 mask=row_ok[:, None] & col_ok[None, :])  # fmt: skip
        # fold the chunk into S only when it is complete (a partial last chunk stays open)
        if GLOBAL or STORE_S:  # noqa: SIM102  (constexpr, then a runtime test)
            if (c + 1) * C <= T:
                S += tl.dot(tl.trans(k), v, input_precision=prec)
    if STORE_S:
        s_off = bh * D * DV + d[:, None] * DV + cols[None, :]
        tl.store(s_ptr + s_off, S, mask=col_ok[None, :])


def prefill_supported(head_dim: int, chunk: int, half: int) -> bool:
    """Whether the kernel takes these sizes (callers with a fallback ask before calling)."""
    pow2 = lambda n: n >= 16 and n & (n - 1) == 0  # noqa: E731
    return pow2(head_dim) and pow2(chunk) and 0 <= half < chunk


def check_prefill_shapes(q, k, v, chunk: int, conv_weight, half: int) -> None:
    """Refuse what the kernel does not handle, with the offending value."""
    name = "aug_linear_prefill"
    require(q.dim() == 4, name, f"q must be [B, H, T, D], got shape {tuple(q.shape)}")
    require(k.shape == q.shape, name, f"k shape {tuple(k.shape)} != q shape {tuple(q.shape)}")
    require(v.dim() == 4 and v.shape[:3] == q.shape[:3], name,
            f"v shape {tuple(v.shape)} does not match q {tuple(q.shape)} in [B, H, T]")  # fmt: skip
    require(q.dtype == k.dtype == v.dtype, name, f"dtypes {q.dtype}, {k.dtype}, {v.dtype} differ")
    d, dv = q.shape[-1], v.shape[-1]
    require(d >= 16 and d & (d - 1) == 0, name, f"head_dim={d} must be a power of 2 >= 16")
    require(dv >= 16, name, f"value head_dim={dv} must be >= 16")
    require(chunk >= 16 and chunk & (chunk - 1) == 0, name,
            f"chunk={chunk} must be a power of 2 >= 16")  # fmt: skip
    require(0 <= half < chunk, name, f"half={half} must be in [0, chunk={chunk})")
    if half:
        require(conv_weight is not None and conv_weight.shape[0] == q.shape[1]
                and conv_weight.shape[1] >= 2 * half + 1, name,
                f"conv_weight shape {None if conv_weight is None else tuple(conv_weight.shape)}"
                f" (want [{q.shape[1]}, >= {2 * half + 1}])")  # fmt: skip


def aug_linear_prefill(q, k, v, chunk: int, alpha, conv_weight=None, *, global_: bool = True,
                       return_state: bool = False, block_v: int | None = None, eps: float = 1e-6,
                       **launch):  # fmt: skip
    """Local + alpha * global (+ the masked conv when `conv_weight` is given) over raw q, k, v
    [B, H, T, D]. Returns the output [B, H, T, DV], and with `return_state` also S [B, H, D, DV]
    (fp32) over the completed chunks. fp32 inputs are computed without TF32 (the test path)."""
    half = 0 if conv_weight is None else conv_weight.shape[-1] // 2
    check_prefill_shapes(q, k, v, chunk, conv_weight, half)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    b, h, t, d = q.shape
    dv = v.shape[-1]
    # 64-column value blocks: 32-column ones would give a 7B layer at batch 1 twice the programs
    # (128 for 132 SMs), but Triton 3.6 miscompiles them on the H200 at head_dim 128 (illegal
    # shared-memory reads under compute-sanitizer, wrong outputs with 4 warps)
    bv = block_v or min(triton.next_power_of_2(dv), 64)
    out = torch.empty_like(v)
    s = torch.empty(b, h, d, dv, dtype=torch.float32, device=q.device) if return_state else out
    alpha = torch.as_tensor(alpha, device=q.device).reshape(())
    w = conv_weight.contiguous() if half else alpha.new_zeros(1, 1)
    _aug_linear_prefill[(b * h, triton.cdiv(dv, bv))](
        q, k, v, out, w, alpha, s, t, h, w.shape[-1], dv,
        D=d, C=chunk, BLOCK_V=bv, HALF=half, GLOBAL=global_, CONV=half > 0,
        STORE_S=return_state, IEEE=q.dtype == torch.float32, EPS=eps,
        **({"num_warps": 4 if d <= 64 else 8} | launch),
    )  # fmt: skip
    return (out, s) if return_state else out
