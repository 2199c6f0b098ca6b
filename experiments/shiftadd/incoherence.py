"""QuIP-style incoherence processing, which the reference's Acc. pipeline runs (the paper does
not mention it): a per-column rescale, then random orthogonal rotations of both sides.

`W x = (U^T (U W' V^T) V) x` with `W' = W diag(s)`, so quantizing `U W' V^T` against the rotated
Hessian `V H' V^T` and mapping back is exact apart from the quantization itself. The reference
uses 2-factor random butterfly matrices; here U and V are Haar-random orthogonal matrices (QR of a
Gaussian), which have the same incoherence property and are simpler to get right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def random_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    return q * torch.sign(torch.diagonal(r))[None, :]  # Haar measure


@dataclass
class Incoherence:
    scale: torch.Tensor  # [K] per-column rescale s
    u: torch.Tensor  # [N, N]
    v: torch.Tensor  # [K, K]

    def to_rotated(self, w: torch.Tensor, h: torch.Tensor):
        """(U W diag(s) V^T, V diag(s)^-1 H diag(s)^-1 V^T normalised as the reference does)."""
        k = h.shape[0]
        h = h / self.scale[:, None] / self.scale[None, :]
        h = h * k / torch.trace(h) + 1e-2 * torch.eye(k, dtype=h.dtype)
        return self.u @ (w * self.scale[None, :]) @ self.v.T, self.v @ h @ self.v.T

    def from_rotated(self, q: torch.Tensor) -> torch.Tensor:
        return (self.u.T @ q @ self.v) / self.scale[None, :]


def make_incoherence(w: torch.Tensor, h: torch.Tensor, seed: int) -> Incoherence:
    w, h = w.double(), h.double()
    hn = h / h.abs().max()
    col_norm = (w * w).sum(0)
    ratio = torch.diag(hn) / col_norm.clamp_min(1e-12)
    scale = torch.where(ratio > 0, ratio.clamp_min(1e-12) ** 0.25, torch.ones_like(ratio))
    gen = torch.Generator().manual_seed(seed)
    return Incoherence(
        scale, random_orthogonal(w.shape[0], gen), random_orthogonal(w.shape[1], gen)
    )
