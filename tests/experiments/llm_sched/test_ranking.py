"""ListMLE against a brute-force Plackett-Luce likelihood, the label map, Kendall's tau against
scipy, and the approx-SJF perturbation (the notes' T2, T3, T5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from celine.experiments.llm_sched.ranking import (
    approx_sjf_scores,
    brute_force_pl_probabilities,
    kendall_tau,
    kendall_tau_fast,
    length_class,
    list_mle,
    num_classes,
    plackett_luce_nll,
    rank_label,
)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_list_mle_equals_brute_force_plackett_luce(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        scores = rng.normal(size=n) * 2
        labels = rng.permutation(n)  # distinct: one true order
        loss = float(list_mle(torch.tensor(scores), torch.tensor(labels)))
        order = tuple(int(i) for i in np.argsort(-labels))
        probs = brute_force_pl_probabilities(scores)
        assert sum(probs.values()) == pytest.approx(1.0)
        assert loss == pytest.approx(-math.log(probs[order]), rel=1e-9, abs=1e-12)
        assert loss == pytest.approx(plackett_luce_nll(scores, order), rel=1e-9, abs=1e-12)
        assert loss >= 0


def test_list_mle_batches_average_and_ties_are_broken_at_random():
    scores = torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.0, -1.0]], dtype=torch.float64)
    labels = torch.tensor([[2, 0, 1], [2, 1, 0]])
    batch = float(list_mle(scores, labels))
    each = [float(list_mle(scores[i], labels[i])) for i in range(2)]
    assert batch == pytest.approx(sum(each) / 2)
    # with all labels tied, the expected loss is the mean over the random orders
    tied = torch.zeros(3, dtype=torch.long)
    s = torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    mean = np.mean([float(list_mle(s, tied, generator=g)) for _ in range(1000)])
    exact = np.mean([-math.log(p) for p in brute_force_pl_probabilities(s.tolist()).values()])
    assert mean == pytest.approx(exact, rel=0.05)


def test_list_mle_goes_to_zero_as_correct_scores_separate():
    labels = torch.tensor([3, 2, 1, 0])
    losses = [float(list_mle(torch.tensor([3.0, 2.0, 1.0, 0.0]) * k, labels)) for k in (1, 5, 50)]
    assert losses[0] > losses[1] > losses[2] >= 0 and losses[2] < 1e-12
    wrong = float(list_mle(torch.tensor([0.0, 1.0, 2.0, 3.0]) * 50, labels))
    assert wrong > 100


def test_label_map():
    lab = rank_label([0, 9, 10, 8191, 8192, 20000], max_len=8192, group=10)
    assert lab.tolist() == [819, 819, 818, 0, 0, 0]
    lengths = np.arange(0, 9000)
    assert (np.diff(rank_label(lengths, 8192, 10)) <= 0).all()
    assert num_classes(8192, 820) == 10
    cls = length_class([0, 819, 820, 8191, 9000], 8192, 820)
    assert cls.tolist() == [0, 0, 1, 9, 9]


def test_kendall_tau_helper_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 5, 30, 200):
        x = rng.integers(0, 6, n).astype(float)  # many ties
        y = x + rng.normal(size=n) * 2
        y[::3] = np.round(y[::3])
        ref = kendalltau(x, y).statistic
        assert kendall_tau(x, y) == pytest.approx(ref, abs=1e-12)
        assert kendall_tau_fast(x, y) == pytest.approx(ref, abs=1e-12)
    assert kendall_tau_fast(np.ones(5), np.arange(5)) == 0.0  # constant prediction: no order


def test_approx_sjf_shuffle_controls_tau():
    rng = np.random.default_rng(1)
    lengths = rng.permutation(400).astype(float)
    assert kendall_tau_fast(approx_sjf_scores(lengths, 0.0), lengths) == 1.0
    half = kendall_tau_fast(approx_sjf_scores(lengths, 0.5, seed=3), lengths)
    assert 0.1 < half < 0.9
    full = [kendall_tau_fast(approx_sjf_scores(lengths, 1.0, seed=s), lengths) for s in range(20)]
    assert abs(np.mean(full)) < 0.03
    est = approx_sjf_scores(lengths, 0.3, seed=0)
    assert sorted(est) == sorted(lengths)  # a permutation of the estimates
