"""celine.stats against scipy on known cases: a constant shift, no shift, ties, n=1 and n=2."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from celine import stats


def _brute_force_sign_flip_p(d):
    """All 2**n sign flips by hand: the share with |mean| >= |observed mean|."""
    d = np.asarray(d, dtype=float)
    observed = abs(d.mean())
    flips = [abs(np.mean(d * np.array(s))) for s in itertools.product([1, -1], repeat=len(d))]
    return np.mean([f >= observed - 1e-12 for f in flips])


def test_describe_matches_scipy_t_interval_on_fresh_data():
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 11):
        x = rng.normal(3.0, 2.0, size=n)
        s = stats.describe(x)
        low, high = sps.t.interval(0.95, df=n - 1, loc=x.mean(), scale=sps.sem(x))
        assert s.n == n and s.mean == pytest.approx(x.mean())
        assert (s.low, s.high) == pytest.approx((low, high))
        assert s.sd == pytest.approx(np.std(x, ddof=1))


def test_describe_one_value_has_an_undefined_interval_not_a_zero_width_one():
    s = stats.describe([0.5])
    assert s.n == 1 and s.mean == 0.5
    assert math.isnan(s.low) and math.isnan(s.high) and math.isnan(s.sd)
    assert stats.fmt_value(s.mean, s.low, s.high) == "0.5 [n/a]"
    assert stats.describe([]).n == 0 and math.isnan(stats.describe([]).mean)


def test_describe_n2_interval_uses_one_degree_of_freedom():
    s = stats.describe([1.0, 3.0])
    # t_{0.975, 1} = 12.706; sem = 1
    assert (s.low, s.high) == pytest.approx((2 - 12.7062, 2 + 12.7062), abs=1e-3)


def test_paired_matches_ttest_rel_and_exact_permutation_on_noisy_pairs():
    rng = np.random.default_rng(0)
    base = rng.normal(0.8, 0.05, size=6)
    a = {s: v + 0.03 + rng.normal(0, 0.02) for s, v in enumerate(base)}
    b = dict(enumerate(base))
    p = stats.paired(a, b)
    xa, xb = np.array([a[s] for s in range(6)]), np.array(list(base))
    ref = sps.ttest_rel(xa, xb)
    assert p.n == 6 and p.diff == pytest.approx((xa - xb).mean())
    assert p.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (p.low, p.high) == pytest.approx((ci.low, ci.high))
    assert p.p_perm == pytest.approx(_brute_force_sign_flip_p(xa - xb))


def test_paired_uses_only_shared_seeds():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 5: 100.0}
    b = {0: 0.5, 1: 1.0, 2: 2.0, 7: -100.0}
    p = stats.paired(a, b)
    assert p.n == 3 and p.seeds == (0, 1, 2)
    assert p.diff == pytest.approx(np.mean([0.5, 1.0, 1.0]))


def test_constant_shift_is_certain_and_no_shift_is_not():
    b = {s: 0.1 * s for s in range(5)}
    shifted = stats.paired({s: v + 0.2 for s, v in b.items()}, b)
    assert shifted.diff == pytest.approx(0.2)
    assert (shifted.low, shifted.high) == pytest.approx((0.2, 0.2))
    assert shifted.p == 0.0
    # every flip but the identity and the full flip has a smaller |mean|: 2 / 32
    assert shifted.p_perm == pytest.approx(2 / 32)
    same = stats.paired(dict(b), b)
    assert same.diff == 0.0 and same.p == 1.0 and same.p_perm == 1.0


def test_ties_in_the_differences_match_brute_force_and_scipy():
    d = [0.1, 0.1, -0.1, 0.1, 0.0, 0.1]
    a = dict(enumerate(d))
    b = {s: 0.0 for s in range(len(d))}
    p = stats.paired(a, b)
    assert p.p_perm == pytest.approx(_brute_force_sign_flip_p(d))
    assert p.p == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue)


def test_n1_and_n2_pairs():
    one = stats.paired({0: 1.0}, {0: 0.5, 1: 0.0})
    assert one.n == 1 and one.diff == 0.5
    assert math.isnan(one.low) and math.isnan(one.p) and math.isnan(one.p_perm)
    two = stats.paired({0: 1.0, 1: 2.0}, {0: 0.0, 1: 0.5})
    assert two.n == 2 and two.p == pytest.approx(sps.ttest_rel([1.0, 2.0], [0.0, 0.5]).pvalue)
    assert two.p_perm == pytest.approx(0.5)  # 4 flips, 2 as extreme: the smallest p n=2 allows
    none = stats.paired({0: 1.0}, {1: 1.0})
    assert none.n == 0 and math.isnan(none.diff)


def test_monte_carlo_permutation_is_deterministic_and_close_to_t_for_large_n():
    rng = np.random.default_rng(3)
    d = rng.normal(0.05, 0.2, size=40)
    p1, p2 = stats.permutation_p(d), stats.permutation_p(d)
    assert p1 == p2
    assert p1 == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue, abs=0.05)


def test_formatting():
    assert stats.fmt_p(math.nan) == "n/a" and stats.fmt_p(0.0001) == "<0.001"
    assert stats.fmt_p(0.0421) == "0.042"
    assert stats.fmt_value(0.8734, 0.85, 0.9) == "0.873 [0.85, 0.9]"
    assert stats.fmt_value(0.8734, 0.85, 0.9, digits=4) == "0.8734 [0.85, 0.9]"
