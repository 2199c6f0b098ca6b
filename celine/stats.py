"""How sure a comparison is: per-group intervals and paired tests over shared seeds.

Everything here is plain numbers in, plain numbers out (numpy + scipy), so `celine compare`,
`celine reproduce` and the rooms' tests compute the same statistics.

- `describe(values)`: n, mean, sample standard deviation and the 95% Student-t interval of the
  mean. With one value the interval is undefined and reported as NaN ("n/a"), never as a width
  of 0.
- `paired(a, b)`: the difference a - b over the seeds both have. Its mean, the 95% t-interval of
  the mean difference, the paired t-test's p (`scipy.stats.ttest_rel`), and an exact paired
  permutation test's p (`scipy.stats.permutation_test`, sign flips of the differences; exact up
  to 2**16 flips, Monte Carlo beyond). The reported p (`p`) is the paired t-test's, the same
  model as the interval; the permutation p (`p_perm`) is shown beside it because it assumes no
  normality, but with n seeds it cannot go below 2 / 2**n (0.25 at n=3, 0.0625 at n=5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
REPORTED_TEST = "paired t-test"
_EXACT_MAX_N = 16  # 2**16 sign flips enumerate in well under a second
_MONTE_CARLO_RESAMPLES = 20_000
_EQUAL_RTOL, _EQUAL_ATOL = 1e-9, 1e-12


@dataclass(frozen=True)
class Summary:
    """A group of replicates: n, mean, standard deviation and the 95% interval of the mean."""

    n: int
    mean: float
    sd: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class Paired:
    """a - b over the seeds both groups have."""

    n: int
    diff: float
    low: float
    high: float
    p: float  # the reported p: the paired t-test's (REPORTED_TEST)
    p_perm: float  # exact (n <= 16) or Monte-Carlo paired permutation test
    seeds: tuple = ()


def describe(values: Sequence[float]) -> Summary:
    """n, mean, sd and the 95% t-interval; sd and interval are NaN for n < 2 (undefined)."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    low, high = _t_interval(x)
    return Summary(n, mean, float(x.std(ddof=1)), low, high)


def _t_interval(x: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    mean, sd, n = float(x.mean()), float(x.std(ddof=1)), len(x)
    if _all_equal(x):  # every replicate equal: the interval is the point itself, not undefined
        return mean, mean
    low, high = stats.t.interval(CONFIDENCE, df=n - 1, loc=mean, scale=sd / math.sqrt(n))
    return float(low), float(high)


def paired(a: Mapping, b: Mapping) -> Paired:
    """Compare two groups keyed by seed (or any replicate key): a - b over the shared keys.

    With no shared key everything is NaN; with one, the difference is known but its interval and
    p are undefined (NaN). When every difference is the same (a constant shift, or no shift at
    all) the t statistic is c/0: the interval is the point, and p is 1 for no shift and 0 for a
    nonzero shift (the t-test's limit; scipy itself returns NaN there).
    """
    a, b = dict(a.items()), dict(b.items())  # a pandas Series iterates values, not keys
    seeds = tuple(sorted(set(a) & set(b), key=_sort_key))
    d = np.array([float(a[s]) - float(b[s]) for s in seeds], dtype=float)
    n = len(d)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, math.nan, seeds)
    diff = float(d.mean())
    if n == 1:
        return Paired(1, diff, math.nan, math.nan, math.nan, math.nan, seeds)
    low, high = _t_interval(d)
    return Paired(n, diff, low, high, _t_p(d), permutation_p(d), seeds)


def _t_p(d: np.ndarray) -> float:
    from scipy import stats

    if _all_equal(d):
        return 1.0 if np.allclose(d, 0.0, rtol=0.0, atol=_EQUAL_ATOL) else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def _all_equal(x: np.ndarray) -> bool:
    """Equal up to floating-point rounding: (a + 0.2) - a is not exactly 0.2 for every a, and a
    t-test on such rounding noise would report an arbitrary p."""
    return bool(np.allclose(x, x[0], rtol=_EQUAL_RTOL, atol=_EQUAL_ATOL))


def permutation_p(d: Sequence[float], seed: int = 0) -> float:
    """Two-sided paired permutation test of mean(d) = 0 by flipping the signs of the differences.

    Exact (all 2**n flips) for n <= 16, else `_MONTE_CARLO_RESAMPLES` random flips with a fixed
    seed, so the same data always gives the same p.
    """
    from scipy import stats

    d = np.asarray(list(d), dtype=float)
    if len(d) < 2:
        return math.nan
    if np.allclose(d, 0.0, rtol=0.0, atol=_EQUAL_ATOL):
        return 1.0  # every flip gives the same statistic
    resamples = 2 ** len(d) if len(d) <= _EXACT_MAX_N else _MONTE_CARLO_RESAMPLES
    res = stats.permutation_test(
        (d, np.zeros_like(d)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=resamples,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.pvalue)


def _sort_key(key):
    return (0, float(key), "") if _is_number(key) else (1, 0.0, str(key))


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def bootstrap(
    *samples: Sequence[float], statistic, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """`statistic(*samples)` and its 95% percentile bootstrap interval, resampling the rows of
    the samples jointly (paired: row i of every sample is one unit, e.g. one problem). For
    intervals over problems rather than over seeds: the seeds of a replay share the problems,
    so their spread says nothing about how the result generalises to other problems."""
    arrays = [np.asarray(list(x), dtype=float) for x in samples]
    n = len(arrays[0])
    if n == 0 or any(len(a) != n for a in arrays):
        raise ValueError(
            f"bootstrap: samples need one equal, non-zero length, got {[len(a) for a in arrays]}"
        )
    point = float(statistic(*arrays))
    if n < 2:
        return point, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    stats_ = np.array([statistic(*(a[i] for a in arrays)) for i in idx], dtype=float)
    stats_ = stats_[np.isfinite(stats_)]
    if len(stats_) == 0:
        return point, math.nan, math.nan
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(stats_, [alpha, 1.0 - alpha])
    return point, float(low), float(high)


def fmt_value(mean: float, low: float, high: float, digits: int = 3) -> str:
    """`0.873 [0.851, 0.895]`; an undefined interval prints as `[n/a]`, never as a zero width."""
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low) or math.isnan(high):
        return f"{mean:.{digits}g} [n/a]"
    return f"{mean:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
