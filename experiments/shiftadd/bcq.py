"""Binary-coding quantization (BCQ) with additive power-of-two (APoT) scales.

A group of weights `w [S]` becomes `sum_i alpha_i * b_i` with `b_i in {-1, +1}^S` (paper Eq. 1):
greedy initialisation, then `rounds` of alternating refinement (least-squares scales, sorted by
magnitude, rounded to APoT, then the exact nearest of the 2^q levels for every weight).
Every function works on a batch of groups `[G, S]` at once.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch

MIN_EXP, MAX_EXP = -63, 63  # what the storage code holds (celine.kernels.shiftadd_format)


@dataclass
class BCQResult:
    dequant: torch.Tensor  # [G, S] the quantized weights
    alpha: torch.Tensor  # [G, q] scales, descending, exactly APoT when apot_terms > 0
    signs: torch.Tensor  # [G, S, q] of +-1
    term_signs: torch.Tensor | None  # [G, q, T] in {-1, 0, 1}: alpha = sum s * 2**e
    term_exps: torch.Tensor | None  # [G, q, T] integer exponents


def pot(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest power of two in the log domain: (sign, exponent) with
    `POT(x) = sign * 2**round(log2|x|)` (half-to-even, so POT(0.74) = 1.0); sign 0 for x = 0
    and for magnitudes below 2**MIN_EXP."""
    mag = x.abs()
    exp = torch.round(torch.log2(mag.clamp_min(torch.finfo(x.dtype).tiny)))
    sign = torch.sign(x)
    sign = torch.where(exp < MIN_EXP, torch.zeros_like(sign), sign)
    exp = exp.clamp(MIN_EXP, MAX_EXP)
    return sign, exp


def apot(alpha: torch.Tensor, terms: int):
    """Greedy additive powers of two (paper Eq. 2): term k is POT of what the first k-1 terms
    left over. Returns (value, signs [..., terms], exps [..., terms])."""
    resid = alpha.clone()
    value = torch.zeros_like(alpha)
    signs, exps = [], []
    for _ in range(terms):
        s, e = pot(resid)
        term = s * torch.exp2(e)
        value, resid = value + term, resid - term
        signs.append(s)
        exps.append(e)
    return value, torch.stack(signs, -1), torch.stack(exps, -1)


def _sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1, so every binary weight is +-1 and packs into one bit."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def greedy_init(w: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`b_i = sign(r)`, `alpha_i = mean|r|`, `r -= alpha_i b_i`: (alpha [G, q], B [G, S, q])."""
    resid = w.clone()
    alphas, signs = [], []
    for _ in range(q):
        b = _sign(resid)
        a = resid.abs().mean(-1)
        resid = resid - a[:, None] * b
        alphas.append(a)
        signs.append(b)
    return torch.stack(alphas, -1), torch.stack(signs, -1)


@functools.lru_cache(maxsize=16)
def _patterns(q: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((-1.0, 1.0), repeat=q)))


def level_table(q: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """All 2^q sign patterns `[2^q, q]`."""
    return _patterns(q).to(dtype=dtype, device=device)


def nearest_signs(w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The sign pattern of the nearest of the 2^q levels `sum_i +-alpha_i` for every weight
    (what the reference's binary search over sorted levels returns): `[G, S, q]`."""
    pats = level_table(alpha.shape[-1], w.dtype, w.device)  # [L, q]
    levels = alpha @ pats.T  # [G, L]
    idx = (w[:, :, None] - levels[:, None, :]).abs().argmin(-1)  # [G, S]
    return pats[idx]


def least_squares_alpha(w: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Scales minimising ||w - B alpha||^2 for fixed B, per group (q x q normal equations)."""
    gram = signs.transpose(1, 2) @ signs  # [G, q, q]
    rhs = (signs.transpose(1, 2) @ w[:, :, None])[..., 0]  # [G, q]
    eye = torch.eye(gram.shape[-1], dtype=w.dtype, device=w.device)
    # a tiny ridge keeps groups whose planes coincide (rank-deficient B) solvable
    return torch.linalg.solve(gram + 1e-6 * eye, rhs)


def quantize_bcq(w: torch.Tensor, q: int, rounds: int = 50, apot_terms: int = 3) -> BCQResult:
    """BCQ of every row of `w [G, S]` with q bits. `apot_terms=0` keeps float scales (plain
    BCQ, LUT-GEMM); otherwise the scales are rounded to APoT inside every refinement round."""
    w = w.to(torch.float32)
    alpha, signs = greedy_init(w, q)
    t_signs = t_exps = None
    if apot_terms:
        alpha, t_signs, t_exps = apot(alpha, apot_terms)
        signs = nearest_signs(w, alpha)
    if q > 1:
        for _ in range(rounds):
            alpha = least_squares_alpha(w, signs).abs()
            alpha = alpha.sort(-1, descending=True).values
            if apot_terms:
                alpha, t_signs, t_exps = apot(alpha, apot_terms)
            new_signs = nearest_signs(w, alpha)
            # a fixed point: the same signs give the same scales in every later round
            converged = torch.equal(new_signs, signs)
            signs = new_signs
            if converged:
                break
    dequant = (signs * alpha[:, None, :]).sum(-1)
    return BCQResult(dequant, alpha, signs, t_signs, t_exps)


def nearest_dequant(w: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(quantized w, signs) for fixed scales: every weight to its nearest level."""
    signs = nearest_signs(w, alpha)
    return (signs * alpha[:, None, :]).sum(-1), signs
