"""A port of the reference BCQ, for regression comparisons only (never product code).

`quantize_shift` of GATECH-EIC/ShiftAddLLM (`quantizers/bcq_quant/bcq_shift.py`) on the CPU, as
written there: greedy init with `r.sign()` and mean|r| (no APoT), then `rounds` of
`refine_mean_torch` (batch CG warm-started from the current scales, q steps with its 1e-6
guards; |.|, sorted descending; `additive_power_of_2`; nearest level by binary search over the
sorted levels), returning the LAST round. `wf` is all ones as in `quantize_shift`.
"""

from __future__ import annotations

import numpy as np
import torch


def _shift_and_sign(x):
    return torch.round(torch.log(torch.abs(x)) / np.log(2)), torch.sign(x)


def additive_power_of_2(x, nums=2):
    shift, sign = _shift_and_sign(x)
    x_rounded = (2.0**shift) * sign
    for _ in range(nums - 1):
        shift, sign = _shift_and_sign(x - x_rounded)
        x_rounded = x_rounded + (2.0**shift) * sign
    return x_rounded


def greedy_mean(w, n_bits):
    b_all = torch.zeros(w.shape + (n_bits,), dtype=w.dtype)
    alpha_all = torch.zeros(w.shape[0], n_bits, dtype=w.dtype)
    r = w.clone()
    for i in range(n_bits):
        b = r.sign()
        alpha = r.abs().mean(dim=1, keepdim=True)
        r -= b * alpha
        b_all[:, :, i] = b
        alpha_all[:, i] = alpha.view(-1)
    return b_all, alpha_all


def batch_cg(a, b, x):
    d1, k, _ = a.shape
    x = x.clone().view(d1, k, 1)
    b = b.view(d1, k, 1)
    r = b - a.bmm(x)
    rtr_new = r.transpose(1, 2).bmm(r)
    p = r.clone()
    for _ in range(k):
        rtr = rtr_new
        ap = a.bmm(p)
        step = rtr / (p.transpose(1, 2).bmm(ap) + 1e-6)
        x += step * p
        r -= step * ap
        rtr_new = r.transpose(1, 2).bmm(r)
        p = r + rtr_new / (rtr + 1e-6) * p
    return x.view(d1, k)


def find_b(w, alpha):
    n_bits = alpha.shape[-1]
    vecs = {0: [[]]}
    for m in range(1, n_bits + 1):
        vecs[m] = [[1.0] + v for v in vecs[m - 1]] + [[-1.0] + v for v in vecs[m - 1]]
    bin_mat = torch.tensor(np.vstack(vecs[n_bits]).astype(np.float32))
    d1, d2 = w.shape
    row = torch.arange(d1).view(d1, 1).repeat([1, d2]).view(-1)
    v_sorted, inds = torch.sort(alpha.mm(bin_mat.t()))
    w_flat = w.reshape(-1)
    left = torch.zeros(d1 * d2, dtype=torch.long)
    right = torch.full((d1 * d2,), 2**n_bits - 1, dtype=torch.long)
    for _ in range(n_bits):
        mid_l = torch.div(left + right - 1, 2, rounding_mode="trunc")
        mid_r = mid_l + 1
        go_left = w_flat < (v_sorted[row, mid_l] + v_sorted[row, mid_r]) / 2
        right[go_left] = mid_l[go_left]
        left[~go_left] = mid_r[~go_left]
    return bin_mat[inds[row, left].view(d1, d2), :]


def reference_quantize_shift(w, qbits, rounds=50, group_size=128, apot_nums=3):
    """The reference's dequantized weight (same shape as w), row groups of `group_size`."""
    shape = w.shape
    wg = w.float().reshape(-1, group_size if group_size > 0 else shape[-1])
    b, alpha = greedy_mean(wg, qbits)
    if rounds > 0 and qbits > 1:
        for _ in range(rounds):
            bt = b.transpose(1, 2)
            alpha = batch_cg(bt.bmm(b), bt.bmm(wg.unsqueeze(-1)).view(-1, qbits), alpha)
            alpha, _ = alpha.abs().sort(descending=True)
            alpha = additive_power_of_2(alpha, nums=apot_nums)
            b = find_b(wg, alpha)
    return torch.einsum("ijl,il->ij", b, alpha).reshape(shape)
