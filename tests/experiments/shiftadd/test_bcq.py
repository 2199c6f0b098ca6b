"""BCQ with APoT scales: closed forms, exact representability, and monotone errors."""

import pytest
import torch

from celine.experiments.shiftadd.bcq import (
    apot,
    greedy_init,
    least_squares_alpha,
    level_table,
    nearest_signs,
    pot,
    quantize_bcq,
)


def gaussian(g=64, s=128, seed=0):
    return torch.randn(g, s, generator=torch.Generator().manual_seed(seed)) * 0.02


def mse(w, res):
    return float(((w - res.dequant) ** 2).mean())


def test_one_bit_bcq_is_the_closed_form():
    w = gaussian()
    res = quantize_bcq(w, 1, rounds=10, apot_terms=0)
    assert torch.equal(res.signs[..., 0], torch.where(w >= 0, 1.0, -1.0))
    assert torch.allclose(res.alpha[:, 0], w.abs().mean(-1), rtol=1e-6)


def test_nearest_signs_are_the_brute_force_argmin():
    w = gaussian(8, 64, seed=1)
    alpha = torch.rand(8, 3, generator=torch.Generator().manual_seed(2)).sort(-1, True).values
    signs = nearest_signs(w, alpha * 0.03)
    got = (signs * alpha[:, None, :] * 0.03).sum(-1)
    levels = alpha * 0.03 @ level_table(3).T  # [8, 8]
    best = (w[:, :, None] - levels[:, None, :]).abs().min(-1).values
    assert torch.allclose((w - got).abs(), best, atol=1e-7)


def test_least_squares_scales_solve_the_normal_equations():
    w = gaussian(4, 64, seed=3)
    _, signs = greedy_init(w, 3)
    alpha = least_squares_alpha(w, signs)
    for g in range(4):
        ref = torch.linalg.lstsq(signs[g], w[g][:, None]).solution[:, 0]
        assert torch.allclose(alpha[g], ref, atol=1e-5)


def test_pot_rounds_in_the_log_domain():
    sign, exp = pot(torch.tensor([0.74, -0.3, 0.0]))
    assert (sign * torch.exp2(exp)).tolist()[:2] == [1.0, -0.25]
    assert sign[2] == 0  # a zero residual contributes no term


@pytest.mark.parametrize("terms", [1, 2, 3])
def test_every_stored_scale_is_a_sum_of_at_most_terms_signed_powers_of_two(terms):
    w = gaussian(32, 128, seed=terms)
    res = quantize_bcq(w, 3, rounds=20, apot_terms=terms)
    assert res.term_signs.shape[-1] == terms
    assert set(res.term_signs.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.equal(res.term_exps, res.term_exps.round())
    exact = (res.term_signs.double() * torch.exp2(res.term_exps.double())).sum(-1)
    assert torch.equal(res.alpha.double(), exact)
    if terms == 1:  # a single shift: every scale is exactly a power of two
        assert torch.equal(torch.log2(res.alpha), torch.log2(res.alpha).round())


def test_apot_error_is_at_most_the_single_power_error():
    a = torch.rand(1000, generator=torch.Generator().manual_seed(4)) * 0.1
    one, _, _ = apot(a, 1)
    three, _, _ = apot(a, 3)
    assert bool(((a - three).abs() <= (a - one).abs()).all())


def test_error_falls_with_bits_and_plain_refinement_never_hurts():
    w = gaussian(seed=5)
    greedy = [mse(w, quantize_bcq(w, q, rounds=0, apot_terms=0)) for q in (1, 2, 3, 4)]
    assert greedy == sorted(greedy, reverse=True)
    refined = [mse(w, quantize_bcq(w, 3, rounds=r, apot_terms=0)) for r in (0, 1, 5, 20)]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(refined, refined[1:], strict=False))
    apot3 = [mse(w, quantize_bcq(w, q, rounds=20, apot_terms=3)) for q in (2, 3, 4)]
    assert apot3 == sorted(apot3, reverse=True)
    # three APoT terms cost little; one shift per scale costs much more (notes A2)
    plain3 = mse(w, quantize_bcq(w, 3, rounds=20, apot_terms=0))
    one3 = mse(w, quantize_bcq(w, 3, rounds=20, apot_terms=1))
    assert apot3[1] < 1.2 * plain3 < one3
