"""Bit allocation: the paper's integer program (per-layer error curves, the budget an upper
bound) solved exactly and optimally; 2.2 bits on tiny_llama and LLaMA-2-7B shapes; the quota."""

import itertools

import pytest
import torch

from celine.experiments.shiftadd.allocate import (
    CHOICES,
    allocate_exact,
    allocate_quota,
    average_bits,
    layer_bit_errors,
    sensitivity,
)


def random_costs(n_layers, seed):
    """score_i * e_i(b): every layer its own falling error curve over {2, 3, 4} bits."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n_layers, generator=g) * 10
    e2 = 0.2 + 0.2 * torch.rand(n_layers, generator=g)
    ratio = 0.2 + 0.3 * torch.rand(n_layers, 2, generator=g)  # e(b+1) / e(b) per layer
    curves = torch.stack([e2, e2 * ratio[:, 0], e2 * ratio[:, 0] * ratio[:, 1]], -1)
    return (scores[:, None] * curves).tolist()


def total(costs, bits):
    return sum(c[CHOICES.index(b)] for c, b in zip(costs, bits, strict=True))


def test_exact_allocation_stays_within_the_budget_and_beats_every_other_choice():
    costs = random_costs(7, seed=0)
    sizes = [3, 3, 8, 3, 8, 8, 3]  # attention-like and MLP-like layers, in units
    for budget in (2.2, 2.5, 3.0, 3.37):
        bits = allocate_exact(costs, sizes, budget)
        assert average_bits(bits, sizes) <= budget + 1e-12
        best = min(
            total(costs, combo)
            for combo in itertools.product(CHOICES, repeat=7)  # brute force over 3^7
            if average_bits(combo, sizes) <= budget + 1e-12
        )
        assert total(costs, bits) == pytest.approx(best, rel=1e-12)


def test_more_sensitive_layers_of_equal_size_and_curve_never_get_fewer_bits():
    scores = [0.1, 5.0, 1.0, 30.0, 0.5, 2.0]
    curve = [0.3, 0.1, 0.03]
    bits = allocate_exact([[s * e for e in curve] for s in scores], [1] * 6, 3.0)
    order = sorted(range(6), key=scores.__getitem__)
    assert [bits[i] for i in order] == sorted(bits)


def test_each_layers_own_curve_decides_not_one_shared_curve():
    # equal scores and sizes, one bit to spare: it goes to the layer whose error falls most
    costs = [[0.30, 0.29, 0.28], [0.30, 0.05, 0.01]]
    assert allocate_exact(costs, [1, 1], 2.5) == [2, 3]


def test_budget_below_the_narrowest_width_is_refused():
    with pytest.raises(ValueError, match="below"):
        allocate_exact([[1.0, 0.5, 0.2]] * 2, [1, 1], 1.9)


def layer_shapes(hidden, intermediate, kv, layers):
    """(N, K) of every decoder linear of a LLaMA-style model, in calibration order."""
    one = [(hidden, hidden), (kv, hidden), (kv, hidden), (hidden, hidden),
           (intermediate, hidden), (intermediate, hidden), (hidden, intermediate)]  # fmt: skip
    return one * layers


@pytest.mark.parametrize(
    "model,shapes",
    [
        ("tiny_llama", layer_shapes(192, 512, 192, 4)),
        ("llama2_7b", layer_shapes(4096, 11008, 4096, 32)),
    ],
)
def test_two_point_two_bits_is_allocated_on_model_shapes(model, shapes):
    # a dry run on shapes alone: the budget the paper headlines must be accepted and used
    sizes = [n * k for n, k in shapes]
    costs = random_costs(len(shapes), seed=7)
    bits = allocate_exact(costs, sizes, 2.2)
    avg = average_bits(bits, sizes)
    assert 2.0 < avg <= 2.2 and set(bits) <= set(CHOICES), (model, avg)
    # within one layer's worth of the budget: no wider layer would still fit
    assert 2.2 - avg < 2 * max(sizes) / sum(sizes)


def test_layer_error_curves_fall_with_bits_on_the_layers_own_weights():
    g = torch.Generator().manual_seed(5)
    gauss = torch.randn(64, 128, generator=g)
    heavy = gauss / (torch.randn(64, 128, 3, generator=g) ** 2).mean(-1).sqrt()  # Student-t 3
    for w in (gauss, heavy):
        e = layer_bit_errors(w)
        assert e[0] > e[1] > e[2]  # 2, 3, 4 bits: a solver that lost accuracy would break this
    assert layer_bit_errors(heavy) != layer_bit_errors(gauss)


def test_quota_assigns_fractions_by_weight_count_in_score_order():
    scores = [5.0, 1.0, 3.0, 2.0, 4.0]
    bits = allocate_quota(scores, [2, 2, 2, 2, 2], [0.0, 0.8, 0.2])
    assert bits == [3, 2, 2, 2, 2]  # the most sensitive 20% of weights get 3 bits
    assert average_bits(bits, [2] * 5) == pytest.approx(2.2)


def test_sensitivity_grows_with_weight_scale():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 32, generator=g)
    x = torch.randn(256, 32, generator=g)
    h = (x.T @ x / 256).double()
    assert sensitivity(2 * w, h) == pytest.approx(8 * sensitivity(w, h), rel=1e-6)
