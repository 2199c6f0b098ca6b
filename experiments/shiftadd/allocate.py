"""Automated bit allocation (paper section 4.3) and the reference's fixed quota.

Sensitivity of layer i: `C_i = ||IS||_F * std(IS)^2` with `IS = W / d`, d the diagonal of the
upper Cholesky factor of the damped inverse Hessian (column-wise division). Its cost at b bits is
`C_{i,b} = C_i * e_i(b)`, with e_i(b) the layer's OWN measured relative error of APoT-BCQ at b
bits (`layer_bit_errors`; the paper fits a polynomial in b per layer, we measure the three points
instead of fitting them). The allocation is the paper's integer program: one width in {2, 3, 4}
per layer minimising `sum_i C_{i,b_i}` subject to a weight-count-weighted average of AT MOST the
budget (`sum_i b_i size_i <= B sum_i size_i`), solved exactly by a dynamic program over layers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from celine.experiments.shiftadd.gptq import inverse_cholesky, prepare_hessian

CHOICES = (2, 3, 4)
ERROR_ROWS = 256  # rows of a layer sampled to measure its error curve (bounded cost)
ERROR_ROUNDS = 20  # BCQ rounds for the error curve (the error settles well before 50)


def sensitivity(w: torch.Tensor, h: torch.Tensor, percdamp: float = 0.01) -> float:
    h, w = prepare_hessian(h, w, percdamp)
    d = torch.diag(inverse_cholesky(h))
    imp = w / d[None, :]
    return float(torch.linalg.norm(imp) * imp.std() ** 2)


def layer_bit_errors(w: torch.Tensor, apot_terms: int = 3, choices=CHOICES) -> list[float]:
    """Relative squared error `||W - Q_b(W)||^2 / ||W||^2` of row-wise APoT-BCQ at each width,
    on the layer's own weights (at most ERROR_ROWS rows, a fixed sample)."""
    from celine.experiments.shiftadd.bcq import quantize_bcq

    w = w.detach().float().cpu()
    if w.shape[0] > ERROR_ROWS:
        idx = torch.randperm(w.shape[0], generator=torch.Generator().manual_seed(0))
        w = w[idx[:ERROR_ROWS]]
    ref = float((w**2).sum()) or 1.0
    return [
        float(((w - quantize_bcq(w, b, ERROR_ROUNDS, apot_terms).dequant) ** 2).sum()) / ref
        for b in choices
    ]


def allocate_exact(costs, sizes, avg_bits: float, choices=CHOICES) -> list[int]:
    """Bits per layer minimising `sum_i costs[i][j_i]` (j the index of the width in `choices`)
    with `sum_i b_i size_i <= avg_bits * sum_i size_i`, exactly (sizes in units of their gcd).

    A dynamic program over layers on the used budget t (array-valued per layer, so LLaMA-2-7B's
    224 layers take well under a second); ValueError only if even the narrowest widths exceed
    the budget."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (len(sizes), len(choices)):
        raise ValueError(f"costs must be [layers, {len(choices)}], got {costs.shape}")
    unit = math.gcd(*[int(s) for s in sizes])
    units = [int(s) // unit for s in sizes]
    cap = math.floor(avg_bits * sum(units) + 1e-9)
    if min(choices) * sum(units) > cap:
        raise ValueError(f"avg_bits={avg_bits} is below the narrowest width {min(choices)}")
    inf = math.inf
    best = np.full(cap + 1, inf)
    best[0] = 0.0
    picks = np.zeros((len(units), cap + 1), dtype=np.int8)  # choice index per (layer, t)
    for i, u in enumerate(units):
        nxt = np.full(cap + 1, inf)
        for j, b in enumerate(choices):
            step = b * u
            if step > cap:
                continue
            cand = np.full(cap + 1, inf)
            cand[step:] = best[: cap + 1 - step] + costs[i, j]
            better = cand < nxt
            nxt[better] = cand[better]
            picks[i, better] = j
        best = nxt
    t = int(np.argmin(best))
    if not math.isfinite(best[t]):
        raise ValueError(f"no allocation over {choices} fits avg_bits={avg_bits}")
    bits = [0] * len(units)
    for i in range(len(units) - 1, -1, -1):
        j = int(picks[i, t])
        bits[i] = choices[j]
        t -= choices[j] * units[i]
    return bits


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
