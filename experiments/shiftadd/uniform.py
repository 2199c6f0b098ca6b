"""Uniform (integer) weight quantization: the RTN and GPTQ baselines' grid."""

from __future__ import annotations

import torch


def uniform_params(w: torch.Tensor, bits: int, sym: bool = False):
    """Per-row min-max grid of `w [N, S]`: (scale [N], zero [N]), `maxq = 2^bits - 1`."""
    maxq = 2**bits - 1
    lo = w.min(-1).values.clamp(max=0)
    hi = w.max(-1).values.clamp(min=0)
    if sym:
        hi = torch.maximum(lo.abs(), hi)
        lo = -hi
    dead = (lo == 0) & (hi == 0)
    lo, hi = torch.where(dead, -1.0, lo), torch.where(dead, 1.0, hi)
    scale = (hi - lo) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-lo / scale)
    return scale, zero


def uniform_quantize(w: torch.Tensor, scale, zero, bits: int) -> torch.Tensor:
    q = torch.clamp(torch.round(w / scale[:, None]) + zero[:, None], 0, 2**bits - 1)
    return scale[:, None] * (q - zero[:, None])


def rtn(w: torch.Tensor, bits: int, groupsize: int = -1, sym: bool = False) -> torch.Tensor:
    """Round-to-nearest with a min-max grid per row (or per `groupsize` columns of a row)."""
    n, k = w.shape
    g = k if groupsize <= 0 else groupsize
    out = torch.empty_like(w)
    for c in range(0, k, g):
        s, z = uniform_params(w[:, c : c + g], bits, sym)
        out[:, c : c + g] = uniform_quantize(w[:, c : c + g], s, z, bits)
    return out
