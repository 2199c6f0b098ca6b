"""Automated bit allocation (paper section 4.3) and the reference's fixed quota.

Sensitivity of layer i: `C_i = ||IS||_F * std(IS)^2` with `IS = W / d`, d the diagonal of the
upper Cholesky factor of the damped inverse Hessian (column-wise division). Its cost at b bits is
`C_i * e(b)`, with e(b) the relative error of APoT-BCQ at b bits (measured once on Gaussian
weights; the paper fits polynomials instead). The allocation minimises the total cost subject to
one width in {2, 3, 4} per layer and a weight-count-weighted average of exactly the budget
(an exact dynamic program over layers, equivalent to the integer program).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from celine.experiments.shiftadd.gptq import inverse_cholesky, prepare_hessian

CHOICES = (2, 3, 4)


def sensitivity(w: torch.Tensor, h: torch.Tensor, percdamp: float = 0.01) -> float:
    h, w = prepare_hessian(h, w, percdamp)
    d = torch.diag(inverse_cholesky(h))
    imp = w / d[None, :]
    return float(torch.linalg.norm(imp) * imp.std() ** 2)


@functools.lru_cache(maxsize=8)
def bit_error(bits: int, apot_terms: int = 3) -> float:
    """Relative squared error of APoT-BCQ at `bits` on N(0, 1) groups of 128."""
    from celine.experiments.shiftadd.bcq import quantize_bcq

    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    res = quantize_bcq(w, bits, 20, apot_terms)
    return float(((w - res.dequant) ** 2).sum() / (w**2).sum())


def allocate_exact(scores, sizes, avg_bits: float, choices=CHOICES) -> list[int]:
    """Bits per layer minimising sum score_i * e(b_i) with sum b_i * size_i exactly
    round(avg_bits * sum size_i) in units of gcd(sizes) (ValueError if no allocation hits it)."""
    unit = math.gcd(*[int(s) for s in sizes])
    units = [int(s) // unit for s in sizes]
    target = avg_bits * sum(units)
    if abs(target - round(target)) > 1e-9:
        raise ValueError(
            f"avg_bits={avg_bits} cannot be met exactly with layer sizes {sorted(set(sizes))}"
        )
    target = round(target)
    inf = math.inf
    # best[t] = (cost, choices so far) after each layer, t = sum of bits * units
    best: dict[int, tuple[float, tuple]] = {0: (0.0, ())}
    for score, u in zip(scores, units, strict=True):
        nxt: dict[int, tuple[float, tuple]] = {}
        for t, (cost, picks) in best.items():
            for b in choices:
                t2 = t + b * u
                if t2 > target:
                    continue
                c2 = cost + score * bit_error(b)
                if c2 < nxt.get(t2, (inf,))[0]:
                    nxt[t2] = (c2, (*picks, b))
        best = nxt
    if target not in best:
        raise ValueError(f"no allocation over {choices} averages exactly {avg_bits} bits")
    return list(best[target][1])


def allocate_quota(scores, sizes, mix_bits) -> list[int]:
    """The reference's rule: layers sorted by ascending score get the widths 1, 2, 3, ... in
    the fractions `mix_bits` of the total weight count (e.g. [0, 0.8, 0.2] = 80% 2-bit)."""
    order = np.argsort(scores, kind="stable")
    total = float(sum(sizes))
    edges = np.cumsum(mix_bits) * total
    bits = [0] * len(scores)
    seen = 0.0
    for i in order:
        seen += sizes[i]
        width = int(np.searchsorted(edges, seen - 1e-9)) + 1
        bits[i] = min(width, len(mix_bits))
    return bits


def average_bits(bits, sizes) -> float:
    return float(np.dot(bits, sizes) / np.sum(sizes))
