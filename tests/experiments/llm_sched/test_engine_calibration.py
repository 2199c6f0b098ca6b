"""The simulator's latency model fitted to an engine's step log (no engine needed)."""

import numpy as np
import pandas as pd
import pytest

from celine.experiments.llm_sched.engine import fit_engine_latency

TRUE = dict(c0=0.004, c_prefill=6e-5, c_decode=2e-4, c_kv=1e-6)
LOOP = 0.0004  # the engine loop's own time between a step's end and the next schedule()


def _steps(batches, rng, idle_after=()):
    """A step log as the vLLM scheduler subclass writes it: each step's cost follows TRUE, the
    cadence is its duration plus the loop's overhead; where nothing is queued the engine logs an
    empty step (batch 0) and the replay sleeps until the next arrival."""
    rows, t = [], 0.0
    for k, b in enumerate(batches):
        prefill = int(rng.integers(0, 2)) * int(rng.integers(20, 120))
        kv = int(b * rng.integers(40, 200))
        cost = (TRUE["c0"] + TRUE["c_prefill"] * prefill + TRUE["c_decode"] * b
                + TRUE["c_kv"] * kv)  # fmt: skip
        rows.append(dict(time=t, duration=cost - LOOP, batch_size=b, prefill_tokens=prefill,
                         decode_seqs=b, kv_tokens=kv))  # fmt: skip
        t += cost
        if k in idle_after:
            rows.append(dict(time=t, duration=0.0001, batch_size=0, prefill_tokens=0,
                             decode_seqs=0, kv_tokens=0))  # fmt: skip
            t += 0.05
    return pd.DataFrame(rows)


def test_burst_plus_ramp_recovers_every_coefficient():
    rng = np.random.default_rng(0)
    burst = _steps([8] * 300, rng)
    ramp = _steps(rng.integers(1, 9, 300), rng)
    fit = fit_engine_latency([burst, ramp])
    for name, value in TRUE.items():
        assert getattr(fit, name) == pytest.approx(value, rel=0.02), name
    assert fit.r2 > 0.999


def test_idle_waits_between_arrivals_are_not_charged_to_the_step_before_them():
    rng = np.random.default_rng(1)
    batches = rng.integers(1, 9, 300)
    idle = set(rng.choice(300, 30, replace=False).tolist())
    with_idle = fit_engine_latency(_steps(batches, np.random.default_rng(2), idle_after=idle))
    without = fit_engine_latency(_steps(batches, np.random.default_rng(2)))
    assert with_idle.c0 == pytest.approx(without.c0, rel=1e-6)
    assert with_idle.c_decode == pytest.approx(without.c_decode, rel=1e-6)
