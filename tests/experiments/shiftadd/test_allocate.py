"""Bit allocation: the exact search meets the budget exactly and is optimal; the quota rule."""

import itertools

import pytest
import torch

from celine.experiments.shiftadd.allocate import (
    allocate_exact,
    allocate_quota,
    average_bits,
    bit_error,
    sensitivity,
)


def test_exact_allocation_meets_the_budget_and_beats_every_other_choice():
    g = torch.Generator().manual_seed(0)
    scores = (torch.rand(7, generator=g) * 10).tolist()
    sizes = [3, 3, 8, 3, 8, 8, 3]  # attention-like and MLP-like layers, in units
    for budget in (2.5, 3.0, 3.5):
        bits = allocate_exact(scores, sizes, budget)
        assert average_bits(bits, sizes) == budget
        cost = sum(s * bit_error(b) for s, b in zip(scores, bits, strict=True))
        for combo in itertools.product((2, 3, 4), repeat=7):  # brute force over 3^7
            if average_bits(combo, sizes) == budget:
                other = sum(s * bit_error(b) for s, b in zip(scores, combo, strict=True))
                assert cost <= other + 1e-12


def test_more_sensitive_layers_of_equal_size_never_get_fewer_bits():
    scores = [0.1, 5.0, 1.0, 30.0, 0.5, 2.0]
    bits = allocate_exact(scores, [1] * 6, 3.0)
    order = sorted(range(6), key=scores.__getitem__)
    assert [bits[i] for i in order] == sorted(bits)


def test_unreachable_budget_is_refused():
    with pytest.raises(ValueError, match="exactly"):
        allocate_exact([1.0, 2.0], [1, 1], 2.25)


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
