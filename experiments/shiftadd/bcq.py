"""Binary-coding quantization (BCQ) with additive power-of-two (APoT) scales.

A group of weights `w [S]` becomes `sum_i alpha_i * b_i` with `b_i in {-1, +1}^S` (paper Eq. 1).
The reference (`quantize_shift` in GATECH-EIC/ShiftAddLLM `bcq_shift.py`) starts from the greedy
solution (`b_i = sign(r)`, `alpha_i = mean|r|`, float scales, no APoT) and runs `rounds` of
alternating refinement: least-squares scales, |.|, sorted descending, rounded to APoT, then the
exact nearest of the 2^q levels for every weight. It returns the last round.

This solver runs that chain unchanged, and on top of it:

- the least-squares solve never fails: float64 normal equations with a ridge scaled to the gram's
  diagonal (two coinciding planes make the gram singular; a fixed 1e-6 ridge vanishes in float32
  next to entries of about S = 128) and `solve_ex`, keeping the previous scales where a solve
  still fails;
- it keeps the best round of every group, not the last (with APoT the error oscillates);
- it runs a second chain warm-started from the (q-1)-bit solution plus one greedy plane, whose
  first point's error is at most the (q-1)-bit error, so the error never rises with q;
- it stops once every group's binary codes repeat an earlier round's: the rounds are a
  deterministic map of the codes, so nothing new can follow (a fixed point or a cycle).

Every function works on a batch of groups `[G, S]` at once.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch

MIN_EXP, MAX_EXP = -63, 63  # what the storage code holds (celine.kernels.shiftadd_format)
RIDGE = 1e-9  # relative to the gram's mean diagonal (= S); float64 keeps it meaningful


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
    """sign with sign(0) = +1, so every binary weight is +-1 and packs into one bit (the
    reference's `r.sign()` gives 0 there; the two differ only on exact zeros)."""
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
    # the reference's order (`list_binary_vecs`: +1 before -1, first bit slowest), which
    # decides which of several equal levels the binary search returns
    return torch.tensor(list(itertools.product((1.0, -1.0), repeat=q)))


def level_table(q: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """All 2^q sign patterns `[2^q, q]`."""
    return _patterns(q).to(dtype=dtype, device=device)


def nearest_signs(w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The sign pattern of the nearest of the 2^q levels `sum_i +-alpha_i` for every weight:
    the reference's binary search over the sorted levels (`find_B_torch`), as one
    `searchsorted` over the midpoints. Where levels coincide (APoT scales often make two sums
    equal) the pattern it returns matters to the next least-squares fit, so the ties break
    exactly as in the reference (an argmin over levels picks other patterns and its chain
    ends worse: 0.1156 vs 0.1135 on Student-t weights, 1 APoT term, 3 bits)."""
    pats = level_table(alpha.shape[-1], w.dtype, w.device)  # [L, q]
    levels_sorted, order = torch.sort(alpha @ pats.T)  # [G, L]
    mids = ((levels_sorted[:, :-1] + levels_sorted[:, 1:]) / 2).contiguous()
    pos = torch.searchsorted(mids, w.contiguous(), right=True)  # midpoints <= w
    return pats[order.gather(1, pos)]


def least_squares_alpha(
    w: torch.Tensor, signs: torch.Tensor, fallback: torch.Tensor | None = None
) -> torch.Tensor:
    """Scales minimising ||w - B alpha||^2 for fixed B, per group (q x q normal equations).

    Solved in float64 with a ridge of RIDGE x the gram's mean diagonal, so groups whose planes
    coincide (a singular gram: the reference's failure mode) get the minimum-norm-like split
    of the shared scale instead of a LinAlgError. A group whose solve still fails (non-finite
    input) keeps `fallback` (zeros when None)."""
    b = signs.to(torch.float64)
    gram = b.transpose(1, 2) @ b  # [G, q, q]
    rhs = (b.transpose(1, 2) @ w.to(torch.float64)[:, :, None])[..., 0]  # [G, q]
    q = gram.shape[-1]
    ridge = RIDGE * gram.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1.0)
    eye = torch.eye(q, dtype=torch.float64, device=w.device)
    sol, info = torch.linalg.solve_ex(gram + ridge[:, None, None] * eye, rhs)
    bad = (info != 0) | ~torch.isfinite(sol).all(-1)
    if bool(bad.any()):
        keep = torch.zeros_like(sol) if fallback is None else fallback.to(torch.float64)
        sol = torch.where(bad[:, None], keep, sol)
    return sol.to(w.dtype)


def _represent(alpha: torch.Tensor, apot_terms: int):
    """Sorted |alpha| as the stored scales: (value, term signs, term exps), APoT if asked."""
    alpha = alpha.abs().sort(-1, descending=True).values
    if apot_terms:
        return apot(alpha, apot_terms)
    return alpha, None, None


def _sq_err(w: torch.Tensor, signs: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return ((w - (signs * alpha[:, None, :]).sum(-1)) ** 2).sum(-1)


@functools.lru_cache(maxsize=32)
def _projection(n: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(n)
    return torch.rand(n, generator=gen, dtype=torch.float64).to(device)


def _code_hash(signs: torch.Tensor) -> torch.Tensor:
    """One float64 per group identifying its binary codes (a random projection of the bits)."""
    g = signs.shape[0]
    proj = _projection(signs[0].numel(), str(signs.device))
    return (signs.reshape(g, -1) > 0).to(torch.float64) @ proj


def _refine(w, alpha, signs, t_signs, t_exps, rounds: int, apot_terms: int, start_counts: bool):
    """Alternating rounds from (alpha, signs), keeping each group's best point. The starting
    point is a candidate only when `start_counts` (the greedy start's float scales are not a
    stored point under APoT); the chain continues from its codes either way."""
    if start_counts:
        best_err = _sq_err(w, signs, alpha)
    else:
        best_err = torch.full((w.shape[0],), float("inf"), dtype=w.dtype, device=w.device)
    best = [alpha, signs, t_signs, t_exps]
    seen = torch.empty(rounds + 1, w.shape[0], dtype=torch.float64, device=w.device)
    seen[0] = _code_hash(signs)
    for r in range(1, rounds + 1):
        alpha_ls = least_squares_alpha(w, signs, fallback=alpha)
        alpha, t_signs, t_exps = _represent(alpha_ls, apot_terms)
        signs = nearest_signs(w, alpha)
        err = _sq_err(w, signs, alpha)
        better = err < best_err
        if bool(better.any()):
            best_err = torch.where(better, err, best_err)
            best = _merge(better, best, [alpha, signs, t_signs, t_exps])
        seen[r] = _code_hash(signs)
        # the rounds are a deterministic map of the codes: a repeat means a fixed point or a
        # cycle, after which no new point (and no better one) can come
        if bool((seen[:r] == seen[r]).any(0).all()):
            break
    return best_err, best


def _merge(take, old: list, new: list) -> list:
    """Per group, the fields of `new` where `take`, else those of `old` (None: take new)."""
    out = []
    for a, b in zip(old, new, strict=True):
        if a is None or b is None:
            out.append(b if a is None else a)
            continue
        out.append(torch.where(take.reshape(-1, *([1] * (a.dim() - 1))), b, a))
    return out


def _fixed_point(w, alpha, apot_terms):
    """Stored scales (APoT if asked) from float ones, and the nearest codes under them."""
    alpha, t_signs, t_exps = _represent(alpha, apot_terms)
    return alpha, nearest_signs(w, alpha), t_signs, t_exps


def _solve(w: torch.Tensor, q: int, rounds: int, apot_terms: int) -> tuple:
    """(squared error per group, [alpha, signs, term_signs, term_exps]) of the best point."""
    g_alpha, g_signs = greedy_init(w, q)
    if q == 1 or rounds == 0:
        # 1 bit: sign(w) and mean|w| are optimal (only the APoT rounding is left)
        if apot_terms:
            point = list(_fixed_point(w, g_alpha, apot_terms))
        else:
            point = [g_alpha, g_signs, None, None]
        best_err, best = _sq_err(w, point[1], point[0]), point
    else:
        # the reference's chain, from the greedy solution
        best_err, best = _refine(
            w, g_alpha, g_signs, None, None, rounds, apot_terms, not apot_terms
        )
    if q == 1:
        return best_err, best
    # The (q-1)-bit solution plus one greedy plane on what it leaves. With r = w - Q_{q-1}(w)
    # and a = mean|r|, the plane sign(r) scaled by any a' in (0, 2a) lowers the error
    # (sum r^2 - n a'(2a - a')); APoT rounding keeps a' within a factor sqrt(2) of a, and the
    # nearest levels can only do better than that assignment. So this point's error is at most
    # the (q-1)-bit error; where it beats the chain above, the chain is rerun from it.
    _, prev = _solve(w, q - 1, rounds, apot_terms)
    resid = w - (prev[1] * prev[0][:, None, :]).sum(-1)
    a_new = resid.abs().mean(-1, keepdim=True)
    if apot_terms:  # encode only the new scale: the old ones are stored APoT already
        a_new, s_new, e_new = apot(a_new, apot_terms)
        alpha0 = torch.cat([prev[0], a_new], -1)
        order = alpha0.argsort(-1, descending=True)
        idx = order[:, :, None].expand(-1, -1, apot_terms)
        t_s0 = torch.cat([prev[2], s_new], 1).gather(1, idx)
        t_e0 = torch.cat([prev[3], e_new], 1).gather(1, idx)
        alpha0 = alpha0.gather(-1, order)
    else:
        alpha0 = torch.cat([prev[0], a_new], -1).sort(-1, descending=True).values
        t_s0 = t_e0 = None
    signs0 = nearest_signs(w, alpha0)
    warm = [alpha0, signs0, t_s0, t_e0]
    warm_err = _sq_err(w, signs0, alpha0)
    wins = warm_err < best_err
    if not bool(wins.any()):
        return best_err, best
    if rounds:
        sub = [None if t is None else t[wins] for t in warm]
        sub_err, sub_best = _refine(w[wins], *sub, rounds, apot_terms, True)
        warm_err = warm_err.clone()
        warm_err[wins] = sub_err
        for t, s in zip(warm, sub_best, strict=True):
            if t is not None:
                t[wins] = s
    best_err = torch.where(wins, warm_err, best_err)
    return best_err, _merge(wins, best, warm)


def quantize_bcq(w: torch.Tensor, q: int, rounds: int = 50, apot_terms: int = 3) -> BCQResult:
    """BCQ of every row of `w [G, S]` with q bits. `apot_terms=0` keeps float scales (plain
    BCQ, LUT-GEMM); otherwise the scales are rounded to APoT inside every refinement round.
    The error is never above the reference chain's best round nor above the (q-1)-bit result."""
    w = w.to(torch.float32)
    _, (alpha, signs, t_signs, t_exps) = _solve(w, q, rounds, apot_terms)
    dequant = (signs * alpha[:, None, :]).sum(-1)
    return BCQResult(dequant, alpha, signs, t_signs, t_exps)


def nearest_dequant(w: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(quantized w, signs) for fixed scales: every weight to its nearest level."""
    signs = nearest_signs(w, alpha)
    return (signs * alpha[:, None, :]).sum(-1), signs
