"""The engine's paired comparison over replicates (no engine needed: the table it reads)."""

import numpy as np
import pandas as pd
import pytest

from celine.experiments.llm_sched.engine import paired_over_replicates


def _every(lpt: dict[str, list[float]], workload="load_1.5") -> pd.DataFrame:
    return pd.DataFrame(
        [dict(scheduler=s, workload=workload, replicate=i, mean_latency_per_token=v)
         for s, vals in lpt.items() for i, v in enumerate(vals)]
    )  # fmt: skip


def test_a_constant_ratio_is_exact_and_significant():
    ltr = [0.01, 0.03, 0.02, 0.05]
    out = paired_over_replicates(_every({"ltr": ltr, "fcfs": [2 * v for v in ltr]}))
    r = out.set_index("scheduler").loc["fcfs"]
    assert r["n"] == 4 and r["ratio"] == pytest.approx(2.0)
    assert r["low"] == pytest.approx(2.0) and r["high"] == pytest.approx(2.0) and r["p"] == 0.0


def test_pairs_by_replicate_not_by_position_in_the_table():
    """A machine-wide swing hits both schedulers in the same replicate; pairing removes it,
    so the ratio is found even though the swing is 10x larger than the effect."""
    rng = np.random.default_rng(0)
    swing = np.exp(rng.normal(0, 1.0, 8))
    ltr = 0.02 * swing
    fcfs = 0.02 * 1.3 * swing * np.exp(rng.normal(0, 0.02, 8))
    every = _every({"fcfs": list(fcfs), "ltr": list(ltr)}).sample(frac=1, random_state=1)
    r = paired_over_replicates(every).set_index("scheduler").loc["fcfs"]
    assert 1.25 < r["ratio"] < 1.35 and r["low"] > 1.2 and r["p"] < 1e-4
    # the per-replicate ratios are reported in replicate order
    assert [float(x) for x in r["per_replicate"].split()] == pytest.approx(
        list(fcfs / ltr), abs=0.006)


def test_no_effect_is_not_significant():
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(-4, 0.3, 6), rng.lognormal(-4, 0.3, 6)
    r = paired_over_replicates(_every({"ltr": list(a), "fcfs": list(b)})).iloc[0]
    assert r["low"] < 1.0 < r["high"] and r["p"] > 0.05
