"""Latency model fitting (on synthetic and on real timed forward passes) and arrivals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celine.serving import (
    LatencyModel,
    burst_arrivals,
    fit_latency_model,
    gamma_arrivals,
    measure_latency,
    poisson_arrivals,
)


def test_fit_recovers_known_coefficients():
    true = LatencyModel(c0=0.004, c_prefill=3e-5, c_decode=5e-4, c_kv=2e-7)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        p, d, k = rng.integers(0, 2000), rng.integers(0, 64), rng.integers(0, 20000)
        rows.append(
            dict(prefill_tokens=p, decode_seqs=d, kv_tokens=k, seconds=true.iteration_time(p, d, k))
        )
    fit = fit_latency_model(pd.DataFrame(rows))
    for key in ("c0", "c_prefill", "c_decode", "c_kv"):
        assert getattr(fit, key) == pytest.approx(getattr(true, key), rel=1e-6)
    assert fit.r2 == pytest.approx(1.0)
    assert set(fit.to_dict()) >= {"c0", "c_prefill", "c_decode", "c_kv", "r2"}


def test_measure_real_tiny_model_and_fit():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(cfg)
    df = measure_latency(model, batch_sizes=(1, 4), prompt_lens=(8, 64), repeats=1)
    assert len(df) == 8 and (df["seconds"] > 0).all()
    assert set(df["kind"]) == {"prefill", "decode"}
    fit = fit_latency_model(df)
    assert fit.iteration_time(0, 1, 10) > 0
    assert all(v >= 0 for k, v in fit.to_dict().items() if k.startswith("c"))


def test_arrivals_rate_and_cv():
    t = poisson_arrivals(rate=5.0, n=20000, seed=0)
    gaps = np.diff(np.concatenate([[0.0], t]))
    assert (gaps >= 0).all()
    assert gaps.mean() == pytest.approx(0.2, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)
    g = np.diff(gamma_arrivals(rate=5.0, cv=3.0, n=20000, seed=1))
    assert g.std() / g.mean() == pytest.approx(3.0, rel=0.15)
    b = burst_arrivals(10, at=1.0, bursts=2, period=5.0)
    assert b.tolist() == [1.0] * 5 + [6.0] * 5
