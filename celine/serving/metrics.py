"""Serving metrics from a `SimResult` (vllm-ltr's `calculate_metrics` and Dynasor's SLOs).

Latency per output token = (finish - arrival) / output tokens: the paper's "s/token".
max_wait = max(TTFT, largest inter-token latency): vllm-ltr's fairness metric.
A program (requests sharing `program`) finishes when its last request finishes.
"""

from __future__ import annotations

import numpy as np


def request_frame(result):
    """One row per request with its latencies."""
    import pandas as pd

    return pd.DataFrame(
        [
            dict(
                rid=r.rid,
                program=r.program,
                arrival=r.arrival,
                prompt_len=r.prompt_len,
                output_len=r.output_len,
                first_token_time=r.first_token_time,
                finish_time=r.finish_time,
                latency=r.latency,
                latency_per_token=r.latency / r.output_len,
                ttft=r.ttft,
                tpot=(r.finish_time - r.first_token_time) / max(r.output_len - 1, 1),
                max_wait=r.max_wait,
                preemptions=r.preemptions,
                deadline=r.deadline,
                met_deadline=(r.finish_time <= r.deadline) if r.deadline is not None else None,
            )
            for r in result.requests
        ]
    )


def program_frame(result):
    """One row per program: start (first arrival), finish (last finish), deadline."""
    import pandas as pd

    df = request_frame(result)
    df = df[df["program"].notna()]
    if df.empty:
        return pd.DataFrame(
            columns=["program", "start", "finish", "latency", "tokens", "deadline", "met_deadline"]
        )
    g = df.groupby("program")
    out = pd.DataFrame(
        {
            "start": g["arrival"].min(),
            "finish": g["finish_time"].max(),
            "tokens": g["output_len"].sum(),
            "requests": g["rid"].count(),
            "deadline": g["deadline"].min(),
        }
    ).reset_index()
    out["latency"] = out["finish"] - out["start"]
    out["met_deadline"] = [
        (f <= d) if d == d and d is not None else np.nan
        for f, d in zip(out["finish"], out["deadline"], strict=True)
    ]
    return out


def time_to_n_completions(result, n: int) -> float:
    """Time from the first arrival until `n` requests have finished (inf if fewer did)."""
    finish = sorted(r.finish_time for r in result.requests)
    if n < 1 or n > len(finish):
        return float("inf")
    start = min(r.arrival for r in result.requests)
    return float(finish[n - 1] - start)


def completed_within(result, seconds: float) -> int:
    """Requests finished within `seconds` of the first arrival."""
    if not result.requests:
        return 0
    start = min(r.arrival for r in result.requests)
    return int(sum(r.finish_time - start <= seconds for r in result.requests))


def deadline_attainment(result, per: str = "request") -> float:
    """Fraction of requests (or programs) with a deadline that finished by it."""
    df = request_frame(result) if per == "request" else program_frame(result)
    met = df["met_deadline"].dropna()
    return float(met.astype(float).mean()) if len(met) else float("nan")


def summarize(result) -> dict[str, float]:
    """The scalar metrics a room logs for one simulation."""
    df = request_frame(result)
    lpt = df["latency_per_token"].to_numpy()
    span = result.makespan - df["arrival"].min() if len(df) else 0.0
    out = {
        "mean_latency_per_token": float(lpt.mean()),
        "p90_latency_per_token": float(np.percentile(lpt, 90)),
        "p99_latency_per_token": float(np.percentile(lpt, 99)),
        "mean_latency": float(df["latency"].mean()),
        "p90_latency": float(np.percentile(df["latency"], 90)),
        "mean_ttft": float(df["ttft"].mean()),
        "p90_ttft": float(np.percentile(df["ttft"], 90)),
        "mean_tpot": float(df["tpot"].mean()),
        "max_wait": float(df["max_wait"].max()),
        "p99_max_wait": float(np.percentile(df["max_wait"], 99)),
        "throughput_rps": float(len(df) / span) if span > 0 else float("nan"),
        "throughput_tps": float(df["output_len"].sum() / span) if span > 0 else float("nan"),
        "preemptions": float(df["preemptions"].sum()),
        "makespan": float(result.makespan),
        "iterations": float(len(result.iterations)),
    }
    if df["met_deadline"].notna().any():
        out["deadline_attainment"] = deadline_attainment(result)
    return out
