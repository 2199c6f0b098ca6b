"""The augmented linear attention of Linearized-LLM, as plain tensor functions.

Per head, with unit-normalised queries and keys (q̂ = q/|q|, k̂ = k/|k|, no softmax, no
normaliser denominator) and chunks of C tokens:

    local   o_i += sum_{j in chunk(i), j <= i} ReLU(q̂_i . k̂_j)^2 v_j
    global  o_i += alpha * q̂_i^T sum_{chunks c < chunk(i)} S_c,   S_c = sum_{j in c} k̂_j v_j^T
    conv    o_i += sum_{t=0..half} w_h[half - t] v_{i-t}      (masked depthwise conv on V)

`alpha` (the learned mix, one scalar per layer) and `w` start at zero, so the augmented form
starts as local-only attention. Three forms compute the same thing:

- `naive_attention`: the O(n^2) masked matrix (the oracle the others are tested against);
- `chunked_attention`: intra-chunk quadratic + exclusive cumsum of chunk states (training);
- `recurrent_attention`: token by token through a constant-size `LinearState` (decoding).

`tree_attention` is the verification form: queries are the nodes of a candidate tree,
each seeing the verified prefix state plus its own ancestors, at its true position.
All tensors are [batch, heads, time, head_dim].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Variant:
    """Which terms are on. softmax=True is the original attention (with a KV cache)."""

    softmax: bool = False
    local: bool = True
    global_: bool = False
    conv: bool = False
    conv_mask: bool = True  # False = the non-causal conv the paper warns about (a test control)


VARIANTS = {
    "softmax": Variant(softmax=True, local=False),
    "local": Variant(),
    "global": Variant(global_=True),
    "augmented": Variant(global_=True, conv=True),
}


def normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


# ----------------------------------------------------------------------------- conv on V


def conv_taps(weight: torch.Tensor, masked: bool = True) -> torch.Tensor:
    """The kernel (heads, 2*half+1) with the future taps (index > half) zeroed when masked.
    The mask is applied on every call, as in the reference, so training cannot revive them."""
    if not masked:
        return weight
    half = weight.shape[-1] // 2
    keep = torch.arange(weight.shape[-1], device=weight.device) <= half
    return weight * keep


def depthwise_conv(v: torch.Tensor, weight: torch.Tensor, masked: bool = True) -> torch.Tensor:
    """One kernel per head along time, shared over head_dim (Conv2d (K,1), groups=heads)."""
    b, h, t, d = v.shape
    half = weight.shape[-1] // 2
    x = v.permute(0, 3, 1, 2).reshape(b * d, h, t)
    y = F.conv1d(x, conv_taps(weight, masked)[:, None, :].to(v.dtype), padding=half, groups=h)
    return y.reshape(b, d, h, t).permute(0, 2, 3, 1)


def unfolded_conv(
    weight: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor, visible: torch.Tensor
) -> torch.Tensor:
    """The conv as a matrix (heads, n_q, n_k): row a holds the tap for every visible key at its
    true distance q_pos[a] - k_pos[k]. For a tree this is the conv along each root-to-node path
    (the paper's unfolded DWConv); for a plain sequence it is the Toeplitz matrix."""
    half = weight.shape[-1] // 2
    delta = q_pos[:, None] - k_pos[None, :]
    valid = visible & (delta >= 0) & (delta <= half)
    idx = (half - delta).clamp(0, 2 * half)
    taps = conv_taps(weight, True)[:, idx]  # (heads, n_q, n_k)
    return taps * valid


# ----------------------------------------------------------------------------- the three forms


def _masked_terms(qh, kh, v, q_pos, k_pos, visible, chunk, alpha, variant: Variant):
    """local + alpha * global over explicit keys, with chunk membership from true positions."""
    scores = qh @ kh.transpose(-1, -2)
    cq, ck = q_pos // chunk, k_pos // chunk
    out = torch.zeros_like(qh[..., :1].expand(*qh.shape[:-1], v.shape[-1]))
    if variant.local:
        same = (visible & (cq[:, None] == ck[None, :])).to(qh.dtype)
        out = out + (F.relu(scores).square() * same) @ v
    if variant.global_:
        earlier = (visible & (ck[None, :] < cq[:, None])).to(qh.dtype)
        out = out + alpha * ((scores * earlier) @ v)
    return out


def naive_attention(qh, kh, v, chunk: int, alpha, conv_weight=None, variant=VARIANTS["local"]):
    """The O(n^2) oracle: M_ij = [same chunk, j<=i] ReLU(q̂k̂)^2 + alpha [chunk j < chunk i] q̂k̂,
    plus the Toeplitz (unfolded) conv."""
    t = qh.shape[-2]
    pos = torch.arange(t, device=qh.device)
    causal = pos[:, None] >= pos[None, :]
    out = _masked_terms(qh, kh, v, pos, pos, causal, chunk, alpha, variant)
    if variant.conv:
        if variant.conv_mask:
            out = out + unfolded_conv(conv_weight, pos, pos, causal).to(v.dtype) @ v
        else:
            out = out + depthwise_conv(v, conv_weight, masked=False)
    return out


def chunked_attention(qh, kh, v, chunk: int, alpha, conv_weight=None, variant=VARIANTS["local"]):
    """The training form: quadratic inside each chunk, exclusive prefix sum of chunk states
    S_c across chunks. Any length (the last chunk is zero-padded; zero keys add nothing)."""
    b, h, t, d = qh.shape
    n = -(-t // chunk)
    pad = n * chunk - t

    def split(x):
        return F.pad(x, (0, 0, 0, pad)).reshape(b, h, n, chunk, x.shape[-1])

    qc, kc, vc = split(qh), split(kh), split(v)
    out = torch.zeros_like(vc)
    if variant.local:
        tril = torch.ones(chunk, chunk, dtype=torch.bool, device=qh.device).tril()
        scores = qc @ kc.transpose(-1, -2)
        out = out + (F.relu(scores).square() * tril.to(qh.dtype)) @ vc
    if variant.global_:
        states = kc.transpose(-1, -2) @ vc  # (b, h, n, d, dv)
        before = torch.cumsum(states, dim=2)[:, :, :-1]
        before = torch.cat([torch.zeros_like(states[:, :, :1]), before], dim=2)
        out = out + alpha * (qc @ before)
    out = out.reshape(b, h, n * chunk, -1)[:, :, :t]
    if variant.conv:
        out = out + depthwise_conv(v, conv_weight, masked=variant.conv_mask)
    return out


@dataclass
class LinearState:
    """Constant-size decoding state of one layer: S over completed chunks, the open chunk's
    keys and values (< C tokens) and the last `half` values for the conv. The softmax variant
    keeps a full KV cache in `k`/`v` instead (open chunk of unbounded length)."""

    S: torch.Tensor  # (b, h, d, dv)
    k: torch.Tensor  # (b, h, open, d)
    v: torch.Tensor  # (b, h, open, dv)
    conv_v: torch.Tensor  # (b, h, <=half, dv)
    length: int = 0  # tokens committed

    @classmethod
    def empty(cls, b, h, d, dv, dtype, device) -> LinearState:
        z = torch.zeros(b, h, 0, d, dtype=dtype, device=device)
        zv = torch.zeros(b, h, 0, dv, dtype=dtype, device=device)
        return cls(torch.zeros(b, h, d, dv, dtype=dtype, device=device), z, zv, zv.clone())

    def clone(self) -> LinearState:
        return LinearState(
            self.S.clone(), self.k.clone(), self.v.clone(), self.conv_v.clone(), self.length
        )

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in (self.S, self.k, self.v, self.conv_v))

    def append(self, kh, v, chunk: int | None, half: int) -> None:
        """Commit new tokens (only verified ones): fill the open chunk, fold each chunk that
        completes into S. chunk=None keeps every key (the softmax KV cache)."""
        if chunk is None:  # KV cache: amortised doubling, not a copy of the cache per token
            self.k, self.v = _grow(self.k, kh), _grow(self.v, v)
            self.length += kh.shape[-2]
            return
        self.k = torch.cat([self.k, kh], dim=-2)
        self.v = torch.cat([self.v, v], dim=-2)
        self.length += kh.shape[-2]
        if chunk is not None:
            full = (self.k.shape[-2] // chunk) * chunk
            if full:
                self.S = self.S + self.k[..., :full, :].transpose(-1, -2) @ self.v[..., :full, :]
                self.k, self.v = self.k[..., full:, :], self.v[..., full:, :]
        if half:
            self.conv_v = torch.cat([self.conv_v, v], dim=-2)[..., -half:, :]


def _grow(cache: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """cache[..., :n, :] + new, written into spare capacity of the cache's storage when the
    cache is a prefix view of a larger buffer (as HF's StaticCache would preallocate)."""
    n, m = cache.shape[-2], new.shape[-2]
    base = getattr(cache, "_celine_buffer", None)
    if base is None or base.shape[-2] < n + m:
        base = torch.empty(
            *cache.shape[:-2],
            max(2 * (n + m), 64),
            cache.shape[-1],
            dtype=cache.dtype,
            device=cache.device,
        )
        base[..., :n, :] = cache
    base[..., n : n + m, :] = new
    out = base[..., : n + m, :]
    out._celine_buffer = base
    return out


def tree_attention(
    qh, kh, v, depth, ancestors, state: LinearState, chunk, alpha, conv_weight, variant
):
    """Outputs for the nodes of a candidate tree appended after the committed prefix.

    Node a sits at position P + depth[a] and sees: S (completed chunks of the prefix), the
    open chunk of the prefix, and its ancestors-or-self (`ancestors[a, b]`). Chunk membership
    follows true positions, so a path that crosses a chunk boundary moves its earlier part into
    the global term (grouping by time step, not by flat index). Tree tokens never enter S."""
    p = state.length
    q_pos = p + depth
    n_open = state.k.shape[-2]
    open_pos = torch.arange(p - n_open, p, device=qh.device)
    keys = torch.cat([state.k, kh], dim=-2)
    vals = torch.cat([state.v, v], dim=-2)
    k_pos = torch.cat([open_pos, q_pos])
    visible = torch.cat(
        [torch.ones(len(depth), n_open, dtype=torch.bool, device=qh.device), ancestors], dim=1
    )
    out = _masked_terms(qh, keys, vals, q_pos, k_pos, visible, chunk, alpha, variant)
    if variant.global_:
        out = out + alpha * (qh @ state.S)
    if variant.conv:
        n_buf = state.conv_v.shape[-2]
        buf_pos = torch.arange(p - n_buf, p, device=qh.device)
        cvis = torch.cat(
            [torch.ones(len(depth), n_buf, dtype=torch.bool, device=qh.device), ancestors], dim=1
        )
        mat = unfolded_conv(conv_weight, q_pos, torch.cat([buf_pos, q_pos]), cvis)
        out = out + mat.to(v.dtype) @ torch.cat([state.conv_v, v], dim=-2)
    return out


def recurrent_attention(qh, kh, v, chunk: int, alpha, conv_weight=None, variant=VARIANTS["local"]):
    """Token by token through a `LinearState` (each step is a one-node tree, then a commit)."""
    b, h, t, d = qh.shape
    half = conv_weight.shape[-1] // 2 if variant.conv else 0
    state = LinearState.empty(b, h, d, v.shape[-1], qh.dtype, qh.device)
    depth = torch.zeros(1, dtype=torch.long, device=qh.device)
    one = torch.ones(1, 1, dtype=torch.bool, device=qh.device)
    outs = []
    for i in range(t):
        sl = slice(i, i + 1)
        outs.append(
            tree_attention(
                qh[:, :, sl],
                kh[:, :, sl],
                v[:, :, sl],
                depth,
                one,
                state,
                chunk,
                alpha,
                conv_weight,
                variant,
            )
        )
        state.append(kh[:, :, sl], v[:, :, sl], chunk, half)
    return torch.cat(outs, dim=-2), state


def softmax_tree_attention(q, k, v, ancestors, state: LinearState, scaling: float):
    """Original attention for tree nodes over the KV cache (state.k/state.v) + ancestors."""
    n_cache = state.k.shape[-2]
    visible = torch.cat(
        [torch.ones(q.shape[-2], n_cache, dtype=torch.bool, device=q.device), ancestors], dim=1
    )
    keys = torch.cat([state.k, k], dim=-2)
    vals = torch.cat([state.v, v], dim=-2)
    return F.scaled_dot_product_attention(q, keys, vals, attn_mask=visible, scale=scaling)
