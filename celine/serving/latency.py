"""Iteration latency: a linear model fitted to timed forward passes of a real causal LM.

iteration_time = c0 + c_prefill * prefill_tokens + c_decode * decode_seqs + c_kv * kv_tokens,
the form used by iteration-level serving simulators: a fixed launch/overhead cost, a cost per
prompt token processed, a cost per decoding sequence, and an attention cost per resident
context token. Coefficients are non-negative (non-negative least squares).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

FEATURES = ("prefill_tokens", "decode_seqs", "kv_tokens")


@dataclass(frozen=True)
class LatencyModel:
    c0: float = 0.01
    c_prefill: float = 1e-4
    c_decode: float = 1e-4
    c_kv: float = 1e-7
    r2: float = float("nan")  # fit quality on the measurements, when fitted
    c_swap: float = 0.0  # seconds per KV token moved to/from host memory (preemption="swap")

    def iteration_time(self, prefill_tokens: int, decode_seqs: int, kv_tokens: int) -> float:
        return (
            self.c0
            + self.c_prefill * prefill_tokens
            + self.c_decode * decode_seqs
            + self.c_kv * kv_tokens
        )

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def unit(cls) -> LatencyModel:
        """One second per iteration whatever the batch (the paper's toy example)."""
        return cls(c0=1.0, c_prefill=0.0, c_decode=0.0, c_kv=0.0)


def measure_latency(
    model,
    *,
    batch_sizes=(1, 4, 16),
    prompt_lens=(16, 64, 256),
    device: str = "cpu",
    repeats: int = 3,
    vocab_size: int | None = None,
    seed: int = 0,
):
    """Time prefill and one decode step of `model` (a transformers causal LM) with a KV cache.

    Returns one row per (kind, batch, prompt_len) with the median of `repeats` timings
    and the features of `LatencyModel`: a prefill of b x L tokens has prefill_tokens = b*L,
    kv_tokens = b*L; a decode step after it has decode_seqs = b, kv_tokens = b*(L+1).
    """
    import inspect

    import pandas as pd
    import torch

    vocab = vocab_size or model.config.vocab_size
    # transformers >= 5.2x names the KV cache argument `cache`; earlier: `past_key_values`
    cache_kw = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device).eval()
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    rows = []
    with torch.inference_mode():
        for b in batch_sizes:
            for L in prompt_lens:
                ids = torch.randint(3, vocab, (b, L), generator=gen).to(device)
                nxt = torch.randint(3, vocab, (b, 1), generator=gen).to(device)
                pre, dec = [], []
                for r in range(repeats + 1):  # first round warms up
                    sync()
                    t0 = time.perf_counter()
                    out = model(input_ids=ids, use_cache=True)
                    sync()
                    t1 = time.perf_counter()
                    kv = out.cache if cache_kw == "cache" else out.past_key_values
                    model(input_ids=nxt, use_cache=True, **{cache_kw: kv})
                    sync()
                    t2 = time.perf_counter()
                    if r:
                        pre.append(t1 - t0)
                        dec.append(t2 - t1)
                rows.append(
                    dict(
                        kind="prefill",
                        batch_size=b,
                        prompt_len=L,
                        prefill_tokens=b * L,
                        decode_seqs=0,
                        kv_tokens=b * L,
                        seconds=float(sorted(pre)[len(pre) // 2]),
                    )
                )
                rows.append(
                    dict(
                        kind="decode",
                        batch_size=b,
                        prompt_len=L,
                        prefill_tokens=0,
                        decode_seqs=b,
                        kv_tokens=b * (L + 1),
                        seconds=float(sorted(dec)[len(dec) // 2]),
                    )
                )
    return pd.DataFrame(rows)


def fit_latency_model(df) -> LatencyModel:
    """Non-negative least squares of `seconds` on (1, prefill_tokens, decode_seqs, kv_tokens)."""
    import numpy as np
    from scipy.optimize import nnls

    X = np.column_stack([np.ones(len(df))] + [df[f].to_numpy(float) for f in FEATURES])
    y = df["seconds"].to_numpy(float)
    # relative error matters (decode steps are much cheaper than long prefills): weight 1/y
    w = 1.0 / np.maximum(y, 1e-9)
    coef, _ = nnls(X * w[:, None], y * w)
    pred = X @ coef
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum()) or 1.0
    return LatencyModel(*(float(c) for c in coef), r2=1.0 - ss_res / ss_tot)


def kv_bytes_per_token(config, dtype_bytes: int = 2) -> int:
    """KV-cache bytes one token occupies in a transformers decoder (keys + values, all layers)."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * dtype_bytes
