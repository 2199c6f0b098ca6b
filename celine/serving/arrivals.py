"""Arrival processes: arrays of absolute arrival times (seconds), sorted."""

from __future__ import annotations

import numpy as np


def gamma_arrivals(rate: float, cv: float, n: int, seed: int = 0, start: float = 0.0):
    """Gamma inter-arrivals with mean 1/rate and coefficient of variation cv (vllm-ltr's
    benchmark: shape 1/cv^2, scale cv^2/rate); cv=1 is Poisson, cv>1 is burstier."""
    if rate <= 0 or cv <= 0 or n < 0:
        raise ValueError(f"need rate > 0, cv > 0, n >= 0; got rate={rate}, cv={cv}, n={n}")
    rng = np.random.default_rng(seed)
    gaps = rng.gamma(shape=1.0 / cv**2, scale=cv**2 / rate, size=n)
    return start + np.cumsum(gaps)


def poisson_arrivals(rate: float, n: int, seed: int = 0, start: float = 0.0):
    return gamma_arrivals(rate, 1.0, n, seed, start)


def burst_arrivals(n: int, at: float = 0.0, bursts: int = 1, period: float = 0.0):
    """`bursts` groups of n/bursts requests arriving at once, `period` seconds apart
    (the paper's burst workload is one burst of 2000 at t=0)."""
    if bursts < 1 or n < 0:
        raise ValueError(f"need bursts >= 1 and n >= 0; got bursts={bursts}, n={n}")
    group = np.arange(n) * bursts // max(n, 1)
    return at + group.astype(float) * period
