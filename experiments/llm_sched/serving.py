"""The room's workloads on the shared simulator: a Poisson/Gamma rate sweep (latency against
load), a burst (mean/P90 latency) and synthetic data generation (time to the first N
completions, completions within a window), all replaying held-out prompts' recorded lengths."""

from __future__ import annotations

import numpy as np
import pandas as pd

from celine.serving import (
    FCFS,
    MLFQ,
    OracleSJF,
    RankScheduler,
    Request,
    Simulator,
    StaticWorkload,
    burst_arrivals,
    gamma_arrivals,
)
from celine.serving.metrics import completed_within, summarize, time_to_n_completions


def saturated_throughput(cfg, test: pd.DataFrame, latency, n: int = 400) -> float:
    """Requests/s the simulated engine completes when it is never idle: FCFS over `n` held-out
    prompts all queued at t=0. Load factors are arrival rates relative to it."""
    rng = np.random.default_rng(cfg.sim_seed + 7919)
    idx = rng.integers(0, len(test), size=n)
    reqs = [
        Request(i, 0.0, int(test["prompt_len"].iat[j]), int(test["output_len"].iat[j]),
                meta={"row": int(j)})
        for i, j in enumerate(idx)
    ]  # fmt: skip
    res = simulate(reqs, FCFS(), None, cfg, latency)
    return n / res.makespan


def build_workloads(cfg, test: pd.DataFrame, latency, capacity: float | None = None
                    ) -> tuple[dict, pd.DataFrame]:  # fmt: skip
    """Request lists (score unset; `meta['row']` indexes the test prompts) per workload.
    Load factors scale `capacity` (req/s; default: the simulated engine's saturated one)."""
    rng = np.random.default_rng(cfg.sim_seed)
    cap = capacity if capacity is not None else saturated_throughput(cfg, test, latency)
    workloads, rows = {}, []

    def requests(arrivals, tag):
        idx = rng.integers(0, len(test), size=len(arrivals))
        return [
            Request(i, float(a), int(test["prompt_len"].iat[j]), int(test["output_len"].iat[j]),
                    meta={"row": int(j), "workload": tag})
            for i, (a, j) in enumerate(zip(arrivals, idx, strict=True))
        ]  # fmt: skip

    for k, f in enumerate(cfg.load_factors):
        rate = f * cap
        arr = gamma_arrivals(rate, cfg.cv, cfg.num_requests, seed=cfg.sim_seed + k)
        workloads[f"load_{f:g}"] = requests(arr, f"load_{f:g}")
        rows.append(dict(workload=f"load_{f:g}", load_factor=f, rate_rps=rate,
                         requests=cfg.num_requests))  # fmt: skip
    if cfg.burst_requests:
        workloads["burst"] = requests(burst_arrivals(cfg.burst_requests), "burst")
        rows.append(dict(workload="burst", load_factor=float("inf"), rate_rps=float("inf"),
                         requests=cfg.burst_requests))  # fmt: skip
    info = pd.DataFrame(rows)
    info.attrs["capacity_rps"] = cap
    return workloads, info


def make_scheduler(name: str, mcfg, latency):
    """A fresh (stateful) scheduler for one simulation."""
    if name == "fcfs":
        return FCFS()
    if name == "oracle_sjf":
        return OracleSJF(remaining=getattr(mcfg, "remaining", True))
    if name == "mlfq":
        return MLFQ(
            base_quantum=getattr(mcfg, "base_quantum", 0.01),
            threshold=getattr(mcfg, "threshold", 2.0),
            num_levels=getattr(mcfg, "num_levels", 16),
            starvation_time=getattr(mcfg, "starvation_time", 3.0),
            starvation_period=getattr(mcfg, "starvation_period", 100),
            latency=latency if getattr(mcfg, "skip_join", True) else None,
        )
    threshold = getattr(mcfg, "starvation_threshold", None)
    if name == "ltr_starvation":
        threshold = getattr(mcfg, "fairness_starvation_threshold", 200)
    sched = RankScheduler(
        starvation_threshold=threshold,
        priority_quantum=getattr(mcfg, "priority_quantum", 10),
    )
    sched.name = name
    return sched


def simulate(requests, scheduler, keys, cfg, latency):
    """Replay `requests` (fresh copies) with rank keys `keys[row]` under `scheduler`."""
    reqs = []
    for r in requests:
        c = r.fresh()
        if keys is not None:
            c.score = float(keys[r.meta["row"]])
        reqs.append(c)
    sim = Simulator(
        latency, scheduler, max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        kv_capacity_tokens=cfg.kv_capacity_tokens, preemption=cfg.preemption,
        preempt_descheduled=cfg.preempt_descheduled,
    )  # fmt: skip
    return sim.run(StaticWorkload(reqs))


def serve_all(name, mcfg, keys, workloads, info, cfg, latency, log=None, engine=None,
              prompts=None) -> pd.DataFrame:  # fmt: skip
    """One row per workload with the serving metrics of scheduler `name`, in the simulator
    or, given a running `engine` (and the held-out `prompts`' token ids), on it."""
    rows = []
    for wname, reqs in workloads.items():
        if engine is not None:
            from celine.experiments.llm_sched.engine import replay

            res = replay(engine, name, mcfg, keys, reqs, prompts, f"{name}/{wname}")
        else:
            res = simulate(reqs, make_scheduler(name, mcfg, latency), keys, cfg, latency)
        m = summarize(res)
        row = dict(scheduler=name, workload=wname, engine="vllm" if engine else "sim", **m)
        meta = info.set_index("workload").loc[wname]
        row["load_factor"], row["rate_rps"] = float(meta["load_factor"]), float(meta["rate_rps"])
        if wname == "burst":
            target = min(cfg.synthetic_target, len(reqs))
            window = cfg.synthetic_window_fraction * len(reqs) / info.attrs["capacity_rps"]
            row["time_to_target"] = time_to_n_completions(res, target)
            row["completed_in_window"] = float(completed_within(res, window))
            row["window_s"] = window
        rows.append(row)
        if log:
            log.info("%s on %s: mean latency/token %.4g s, P90 %.4g s, max wait %.3g s",
                     name, wname, m["mean_latency_per_token"], m["p90_latency_per_token"],
                     m["max_wait"])  # fmt: skip
    return pd.DataFrame(rows)


def headline_metrics(table: pd.DataFrame, cfg) -> dict[str, float]:
    """The scalar metrics of one scheduler's rows."""
    out = {}
    loads = table[table["workload"] != "burst"].sort_values("load_factor")
    for r in loads.itertuples():
        out[f"load_{r.load_factor:g}/mean_latency_per_token"] = r.mean_latency_per_token
        out[f"load_{r.load_factor:g}/p90_latency_per_token"] = r.p90_latency_per_token
    if len(loads):
        hi = loads.iloc[-1]
        for k in ("mean_latency_per_token", "p90_latency_per_token", "mean_ttft",
                  "max_wait", "throughput_tps"):  # fmt: skip
            out[f"high_load/{k}"] = float(hi[k])
    burst = table[table["workload"] == "burst"]
    if len(burst):
        b = burst.iloc[0]
        out["burst/mean_latency"] = float(b["mean_latency"])
        out["burst/p90_latency"] = float(b["p90_latency"])
        out["burst/mean_latency_per_token"] = float(b["mean_latency_per_token"])
        out["synthetic/time_to_target"] = float(b["time_to_target"])
        out["synthetic/completed_in_window"] = float(b["completed_in_window"])
    return out
