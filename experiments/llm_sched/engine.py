"""llm_sched on a real engine (`engine=vllm`), and the simulator checked against it.

The same held-out prompts, arrival times and output caps as the simulator's workloads are
replayed on vLLM for each scheduler; ranks reach vLLM as request priorities and the starvation
rule runs in `celine.serving.vllm_scheduler`. Load factors are relative to the engine's own
saturated throughput (a burst of `engine.capacity_requests` prompts under FCFS), and the steps
of that burst calibrate the simulator's latency model (cached per machine and model). The load
workloads are then replayed in the simulator too, with the calibrated model and the engine's
settings, for the error per scheduler and whether both engines order the schedulers alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from celine.serving import LatencyModel, Request, poisson_arrivals
from celine.serving.metrics import summarize
from celine.serving.vllm_engine import priorities_from_keys

# schedulers the real engine runs; mlfq demotes by service time, which vLLM's priority hook
# (a fixed key per request, refreshed per step by rank) does not express
ENGINE_SCHEDULERS = (
    "fcfs", "oracle_sjf", "ltr", "ltr_starvation", "sched_classifier", "sched_prompt_len",
)  # fmt: skip


def heldout_prompts(task) -> dict[int, list[int]]:
    """Token ids of the held-out prompts by test row (as long as the trace's prompt_len)."""
    ids, _ = task.split_ids("test")
    lens = task.test["prompt_len"].to_numpy()
    return {j: list(x[-int(n) :]) for j, (x, n) in enumerate(zip(ids, lens, strict=True))}


def replay_plan(name: str, mcfg, keys) -> dict:
    """How scheduler `name` reaches vLLM: priorities by test row, starvation rule, SRTF."""
    if name == "fcfs":
        return dict(priorities=None, starvation_threshold=None, remaining=False)
    if name == "oracle_sjf":
        return dict(priorities=None, oracle=True, starvation_threshold=None,
                    remaining=bool(getattr(mcfg, "remaining", True)))  # fmt: skip
    threshold = getattr(mcfg, "starvation_threshold", None)
    if name == "ltr_starvation":
        threshold = getattr(mcfg, "fairness_starvation_threshold", 200)
    return dict(priorities=priorities_from_keys(keys), starvation_threshold=threshold,
                priority_quantum=getattr(mcfg, "priority_quantum", 10), remaining=False)  # fmt: skip


def replay(engine, name, mcfg, keys, requests, prompts, label=""):
    plan = replay_plan(name, mcfg, keys)
    rows = {r.rid: r.meta["row"] for r in requests}
    if plan.get("oracle"):
        prio = {r.rid: int(r.output_len) for r in requests}
    elif plan["priorities"] is not None:
        prio = {rid: int(plan["priorities"][row]) for rid, row in rows.items()}
    else:
        prio = None
    return engine.replay(
        requests, {rid: prompts[row] for rid, row in rows.items()}, prio,
        starvation_threshold=plan["starvation_threshold"],
        priority_quantum=plan.get("priority_quantum", 10), remaining=plan["remaining"],
        name=label or name,
    )  # fmt: skip


# -- calibration -----------------------------------------------------------------------------


def fit_engine_latency(iterations) -> LatencyModel:
    """The simulator's latency model fitted to the engine's calibration steps (the capacity
    burst and the ramps after it, see `calibrate`; one frame or a list): a step's time is the
    engine's cadence, from its schedule() to the next step's, so the loop's own overhead (sending outputs, reading requests; on a shared machine
    also the time other jobs hold the cores) is part of the cost the simulator charges.
    Unweighted non-negative least squares: on a shared machine the step times are right-skewed
    (stalls), and only a fit of the mean keeps the engine's throughput; the relative-error fit
    the simulator uses for clean forward-pass timings underestimated it ~4x here."""
    from scipy.optimize import nnls

    frames = [iterations] if isinstance(iterations, pd.DataFrame) else list(iterations)
    feats = ["prefill_tokens", "decode_seqs", "kv_tokens"]
    X, y = [], []
    for frame in frames:  # a cadence never spans two replays
        it = frame.sort_values("time")
        cadence = (it["time"].shift(-1) - it["time"]).to_numpy()
        # Idle waits between arrivals follow the empty step the engine logs when its last
        # request finishes (batch 0), which the fit leaves out; a long gap after a step that
        # ran requests is a stall the replays pay too, so it stays.
        keep = (it["batch_size"].to_numpy() > 0) & np.isfinite(cadence)
        X.append(
            np.column_stack([np.ones(keep.sum())] + [it[f].to_numpy(float)[keep] for f in feats])
        )
        y.append(cadence[keep])
    X, y = np.vstack(X), np.concatenate(y)
    coef, _ = nnls(X, y)
    pred = X @ coef
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / (float(((y - y.mean()) ** 2).sum()) or 1.0)
    return LatencyModel(*(float(c) for c in coef), r2=r2)


def calibration_key(task, engine) -> str:
    cfg = task.cfg
    settings = dict(v=5, host=platform.node(), machine=platform.machine(),
                    model=str(Path(task.lm.path).name), trace=cfg.trace, data=cfg.data_root,
                    prompts=cfg.num_prompts, trace_seed=cfg.trace_seed, seqs=engine.max_num_seqs,
                    tokens=engine.max_num_batched_tokens, len=engine.max_model_len,
                    n=task.cfg.engine.capacity_requests, dtype=engine.dtype,
                    threads=engine.omp_threads, seed=task.cfg.sim_seed,
                    ramps=ramp_loads(cfg), ramp_n=ramp_requests(cfg))  # fmt: skip
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


# the calibration ramp's load: low enough that the running batch empties and refills
RAMP_LOAD = 0.6


def ramp_loads(cfg) -> list[float]:
    """Load factors of the calibration's ramps: RAMP_LOAD and the task's finite ones."""
    return sorted({RAMP_LOAD, *(float(f) for f in cfg.load_factors)})


def ramp_requests(cfg) -> int:
    """Requests per ramp: a replay's worth, capped so five load factors calibrate in ~2 min."""
    return min(cfg.num_requests, 2 * cfg.engine.capacity_requests)


def calibrate(task, engine, prompts, log) -> dict:
    """Saturated throughput and the fitted latency model, measured once per machine + model."""
    cfg = task.cfg
    path = task.cache_dir / f"engine-calibration-{calibration_key(task, engine)}.json"
    if path.is_file():
        doc = json.loads(path.read_text())
        log.info("engine: calibration cached in %s", path)
        return doc
    test = task.test
    rng = np.random.default_rng(cfg.sim_seed + 7919)
    idx = rng.integers(0, len(test), size=cfg.engine.capacity_requests)
    reqs = [
        Request(i, 0.0, int(test["prompt_len"].iat[j]), int(test["output_len"].iat[j]),
                meta={"row": int(j)})
        for i, j in enumerate(idx)
    ]  # fmt: skip
    res = replay(engine, "fcfs", None, None, reqs, prompts, "capacity")
    capacity = len(reqs) / res.makespan
    # The burst keeps the batch full, so a per-sequence cost is indistinguishable from the
    # constant (a burst-only fit had c_decode = 0 and the simulator ran 17-37% fast where
    # batches of 1-7 are common). Ramps of other held-out prompts add steps of every batch size:
    # one at RAMP_LOAD x capacity, where the batch empties and refills, and one at each of the
    # task's load factors, so the fit sees the mix of prefills, batch sizes and KV the evaluated
    # replays run (with a single 0.6 ramp, fits from two runs differed 7x in the KV term and
    # were 15% off the replays' decode steps in one of them). Their arrivals share no seed with
    # the evaluated workloads.
    frames, steps = [res.iterations], int((res.iterations["batch_size"] > 0).sum())
    for k, load in enumerate(ramp_loads(cfg)):
        ramp_idx = rng.integers(0, len(test), size=ramp_requests(cfg))
        arrivals = poisson_arrivals(load * capacity, len(ramp_idx), seed=cfg.sim_seed + 104729 + k)
        ramp = [
            Request(i, float(t), int(test["prompt_len"].iat[j]), int(test["output_len"].iat[j]),
                    meta={"row": int(j)})
            for i, (t, j) in enumerate(zip(arrivals, ramp_idx, strict=True))
        ]  # fmt: skip
        ramp_res = replay(engine, "fcfs", None, None, ramp, prompts, f"calibration-ramp-{load:g}")
        frames.append(ramp_res.iterations)
        steps += int((ramp_res.iterations["batch_size"] > 0).sum())
    latency = fit_engine_latency(frames)
    doc = dict(capacity_rps=capacity, latency=latency.to_dict(), steps=steps,
               makespan_s=res.makespan, ramp_loads=ramp_loads(cfg), engine=res.info["version"],
               host=platform.node())  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    log.info("engine: capacity %.2f req/s, latency model %s", doc["capacity_rps"], doc["latency"])
    return doc


def sim_settings(cfg, engine):
    """The task's config as the engine runs it: recompute preemption (vLLM on CPU has no swap
    space here), the engine's token budget, KV that never runs out (1 GiB holds ~1M tokens of
    these tiny models), and a request displaced from the running set by a higher-ranked one
    preempted, as the engine's scheduler subclass does (its recomputed prefill is the price of
    the re-sort that the simulator's default, which parks it with its KV, does not charge)."""
    return dataclasses.replace(
        cfg, preemption="recompute", max_num_batched_tokens=engine.max_num_batched_tokens,
        kv_capacity_tokens=max(cfg.kv_capacity_tokens, 1 << 20), preempt_descheduled=True,
    )  # fmt: skip


def serve_interleaved(runs, workloads, info, cfg, engine, prompts, replicates, log):
    """Every (scheduler, workload) on the engine `replicates` times, schedulers interleaved
    round by round. Returns (mean over replicates per scheduler and workload, every row)."""
    from celine.experiments.llm_sched.serving import serve_all

    rows = []
    for rep in range(replicates):
        for name, mcfg, keys in runs:
            df = serve_all(name, mcfg, keys, workloads, info, cfg, None, log, engine, prompts)
            rows.append(df.assign(replicate=rep))
    every = pd.concat(rows, ignore_index=True)
    num = every.select_dtypes("number").columns.drop("replicate")
    mean = every.groupby(["scheduler", "workload"], sort=False)[list(num)].mean().reset_index()
    mean.insert(2, "engine", "vllm")
    mean["replicates"] = replicates
    return mean, every


def paired_over_replicates(
    every: pd.DataFrame, baseline: str = "ltr", metric: str = "mean_latency_per_token"
) -> pd.DataFrame:
    """Each scheduler against `baseline` on the engine, paired by replicate (the same arrivals
    served in the same round, so a load swing on the machine hits both): the geometric-mean
    ratio X / baseline with its 95% interval and the paired t-test's p on the log ratios. The
    replicate is the unit: requests within one replay share the engine's queue and are not
    independent."""
    from celine.stats import paired

    rows = []
    for wname, g in every.groupby("workload", sort=False):
        by = g.pivot_table(index="replicate", columns="scheduler", values=metric)
        if baseline not in by:
            continue
        base = np.log(by[baseline])
        for name in by.columns:
            if name == baseline:
                continue
            pr = paired(np.log(by[name]).to_dict(), base.to_dict())
            rows.append(
                dict(
                    workload=wname,
                    scheduler=name,
                    baseline=baseline,
                    n=pr.n,
                    ratio=float(np.exp(pr.diff)),
                    low=float(np.exp(pr.low)),
                    high=float(np.exp(pr.high)),
                    p=pr.p,
                    p_perm=pr.p_perm,
                    per_replicate=" ".join(f"{v:.2f}" for v in by[name] / by[baseline]),
                )
            )
    return pd.DataFrame(rows)


def engine_vs_sim(engine_table: pd.DataFrame, sim_table: pd.DataFrame) -> pd.DataFrame:
    """Per workload and scheduler: mean latency per token on both, the simulator's error, and
    per workload whether both order the schedulers alike (Kendall tau of the two orders)."""
    cols = ["workload", "scheduler", "mean_latency_per_token", "p90_latency_per_token",
            "mean_ttft"]  # fmt: skip
    m = engine_table[cols].merge(sim_table[cols], on=["workload", "scheduler"],
                                 suffixes=("_engine", "_sim"))  # fmt: skip
    m["sim_error"] = m["mean_latency_per_token_sim"] / m["mean_latency_per_token_engine"] - 1.0
    out = []
    for _, g in m.groupby("workload", sort=False):
        g = g.copy()
        e, s = g["mean_latency_per_token_engine"], g["mean_latency_per_token_sim"]
        g["rank_engine"] = e.rank(method="min").astype(int)
        g["rank_sim"] = s.rank(method="min").astype(int)
        g["same_order"] = bool((g["rank_engine"] == g["rank_sim"]).all())
        g["order_tau"] = float(kendalltau(e, s).statistic) if len(g) > 1 else 1.0
        out.append(g)
    return pd.concat(out, ignore_index=True)


__all__ = [
    "ENGINE_SCHEDULERS", "calibrate", "engine_vs_sim", "fit_engine_latency",
    "paired_over_replicates", "replay",
    "replay_plan", "sim_settings", "summarize", "heldout_prompts",
]  # fmt: skip
