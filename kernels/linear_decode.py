"""One-token decode step of Linearized-LLM's augmented linear attention, as one Triton kernel.

The function is `experiments/linearized/attention.py`'s recurrent form for one new token at
position p (p tokens already committed), per (batch row, head), with q̂ = q/|q|, k̂ = k/|k|:

    o = sum_{j in open chunk} ReLU(q̂.k̂_j)^2 v_j + ReLU(q̂.k̂)^2 v      (local, chunk of C tokens)
      + alpha * q̂ S                                                  (global: completed chunks)
      + sum_{t=0..half} w[half - t] v_{p-t}                          (masked depthwise conv on V)

then the commit: k̂, v enter the open chunk (slot p mod C), v enters the conv ring (slot
p mod half), and when the chunk completes (p mod C = C-1) S += K_chunk^T V_chunk. Every tensor has
a fixed shape and the position is read from a device tensor, so the step is CUDA-graph safe and
its cost does not depend on p (the point of the method: constant decode cost).

Why not flash-linear-attention: its recurrent/chunk kernels compute (gated) linear attention with
linear scores inside the chunk and the current chunk in the state; this form squares ReLU'd
scores inside the chunk, keeps S one chunk behind and adds a conv on V, so no fla kernel computes
the same function. State layout (`LinearDecodeState`): S fp32 [B, H, D, D], open-chunk keys and
values [B, H, C, D], conv ring [B, H, half, D].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from celine.kernels.gemv_checks import require


@triton.jit
def _aug_linear_decode(
    q_ptr, k_ptr, v_ptr, out_ptr,  # [B, H, D]
    s_ptr,  # [B, H, D, D] fp32
    kc_ptr, vc_ptr,  # [B, H, C, D]
    ring_ptr,  # [B, H, HB, D]
    w_ptr,  # [H, KW] conv taps (only 0..HALF used: the masked, causal half)
    alpha_ptr,  # scalar
    pos_ptr,  # int64 scalar: tokens committed before this one
    H, KW,
    D: tl.constexpr, C: tl.constexpr, HALF: tl.constexpr, BLOCK_HB: tl.constexpr,
    EPS: tl.constexpr,
):  # fmt: skip
    bh = tl.program_id(0)
    h = bh % H
    pos = tl.load(pos_ptr)
    n = pos % C
    d = tl.arange(0, D)
    j = tl.arange(0, C)
    q = tl.load(q_ptr + bh * D + d).to(tl.float32)
    k = tl.load(k_ptr + bh * D + d).to(tl.float32)
    v = tl.load(v_ptr + bh * D + d).to(tl.float32)
    q = q / tl.maximum(tl.sqrt(tl.sum(q * q, 0)), EPS)
    k = k / tl.maximum(tl.sqrt(tl.sum(k * k, 0)), EPS)
    # local: the open chunk's earlier tokens (slots < n) and the token itself
    chunk_off = bh * C * D + j[:, None] * D + d[None, :]
    earlier = (j < n)[:, None]
    kc = tl.load(kc_ptr + chunk_off, mask=earlier, other=0.0).to(tl.float32)
    vc = tl.load(vc_ptr + chunk_off, mask=earlier, other=0.0).to(tl.float32)
    sc = tl.maximum(tl.sum(kc * q[None, :], 1), 0.0)
    own = tl.maximum(tl.sum(q * k, 0), 0.0)
    o = tl.sum((sc * sc)[:, None] * vc, 0) + own * own * v
    # global: alpha * q̂ S over the completed chunks
    s_off = bh * D * D + d[:, None] * D + d[None, :]
    S = tl.load(s_ptr + s_off)
    alpha = tl.load(alpha_ptr).to(tl.float32)
    o += alpha * tl.sum(q[:, None] * S, 0)
    # conv: tap half - t on v_{p-t}; slot r of the ring holds the position p' = r (mod HALF)
    # among p-HALF .. p-1, i.e. t = ((p - r - 1) mod HALF) + 1, present when p - r - 1 >= 0
    if HALF > 0:
        o += tl.load(w_ptr + h * KW + HALF).to(tl.float32) * v
        r = tl.arange(0, BLOCK_HB)
        t = (pos - r - 1) % HALF + 1
        ok = (r < HALF) & (pos - r - 1 >= 0)
        ring_off = bh * HALF * D + r[:, None] * D + d[None, :]
        ring = tl.load(ring_ptr + ring_off, mask=ok[:, None], other=0.0).to(tl.float32)
        taps = tl.load(w_ptr + h * KW + HALF - t, mask=ok, other=0.0).to(tl.float32)
        o += tl.sum(taps[:, None] * ring, 0)
        tl.store(ring_ptr + bh * HALF * D + (pos % HALF) * D + d,
                 v.to(ring_ptr.dtype.element_ty))  # fmt: skip
    tl.store(out_ptr + bh * D + d, o.to(out_ptr.dtype.element_ty))
    # commit the token to the open chunk; fold the chunk into S when it completes
    tl.store(kc_ptr + bh * C * D + n * D + d, k.to(kc_ptr.dtype.element_ty))
    tl.store(vc_ptr + bh * C * D + n * D + d, v.to(vc_ptr.dtype.element_ty))
    if n == C - 1:
        me = (j == n)[:, None]
        kall = tl.where(me, k[None, :], kc)
        vall = tl.where(me, v[None, :], vc)
        S += tl.dot(tl.trans(kall), vall, input_precision="ieee")  # no tf32: S persists
        tl.store(s_ptr + s_off, S)


@dataclass
class LinearDecodeState:
    """Per-layer decode state of the augmented linear attention (fixed shapes)."""

    S: torch.Tensor  # [B, H, D, D] fp32, completed chunks
    k: torch.Tensor  # [B, H, C, D] open chunk keys (slot = position mod C)
    v: torch.Tensor  # [B, H, C, D] open chunk values
    ring: torch.Tensor  # [B, H, max(half, 1), D] last `half` values (slot = position mod half)

    @classmethod
    def empty(cls, b, h, d, chunk, half, dtype, device) -> LinearDecodeState:
        z = torch.zeros(b, h, chunk, d, dtype=dtype, device=device)
        return cls(
            torch.zeros(b, h, d, d, dtype=torch.float32, device=device),
            z,
            z.clone(),
            torch.zeros(b, h, max(half, 1), d, dtype=dtype, device=device),
        )


def check_decode_shapes(q, state: LinearDecodeState, conv_weight, half: int) -> None:
    """Refuse what the kernel does not handle, with the offending value."""
    name = "aug_linear_decode"
    require(q.dim() == 3, name, f"q must be [B, H, D], got shape {tuple(q.shape)}")
    b, h, d = q.shape
    c = state.k.shape[2]
    require(d >= 16 and d & (d - 1) == 0, name, f"head_dim={d} must be a power of 2 >= 16")
    require(c >= 16 and c & (c - 1) == 0, name, f"chunk={c} must be a power of 2 >= 16")
    require(tuple(state.S.shape) == (b, h, d, d), name, f"S shape {tuple(state.S.shape)}")
    require(state.S.dtype == torch.float32, name, f"S dtype {state.S.dtype} (must be fp32)")
    require(
        tuple(state.k.shape) == (b, h, c, d) and state.v.shape == state.k.shape,
        name,
        f"open-chunk shapes {tuple(state.k.shape)}, {tuple(state.v.shape)} (want {(b, h, c, d)})",
    )
    require(half >= 0 and (half == 0 or state.ring.shape[2] == half), name,
            f"half={half} with a ring of {state.ring.shape[2]} slots")  # fmt: skip
    if half:
        require(conv_weight is not None and conv_weight.shape[0] == h
                and conv_weight.shape[1] >= 2 * half + 1, name,
                f"conv_weight shape {None if conv_weight is None else tuple(conv_weight.shape)}"
                f" (want [{h}, >= {2 * half + 1}])")  # fmt: skip


def aug_linear_decode(q, k, v, state: LinearDecodeState, pos, alpha, conv_weight, half: int,
                      eps: float = 1e-6) -> torch.Tensor:  # fmt: skip
    """One token per row: q, k, v [B, H, D] (after RoPE, before normalisation) -> o [B, H, D];
    updates `state` in place for the token at position `pos` (int64 device scalar tensor; the
    caller advances it). alpha: scalar tensor; conv_weight [H, 2*half+1] or None when half=0."""
    check_decode_shapes(q, state, conv_weight, half)
    b, h, d = q.shape
    out = torch.empty_like(v)
    w = conv_weight if half else q.new_zeros(h, 1)
    _aug_linear_decode[(b * h,)](
        q.contiguous(), k.contiguous(), v.contiguous(), out, state.S, state.k, state.v,
        state.ring, w.contiguous(), alpha, pos, h, w.shape[1],
        D=d, C=state.k.shape[2], HALF=half, BLOCK_HB=max(triton.next_power_of_2(half), 2),
        EPS=eps, num_warps=8 if d >= 128 else 4,
    )  # fmt: skip
    return out
