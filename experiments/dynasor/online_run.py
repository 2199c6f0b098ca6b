"""The online experiment: latency model from the real model, programs from the recorded
chains, a rate sweep and an SLO-scale sweep per scheduler, and the sustainable-rate ratio."""

from __future__ import annotations

import numpy as np
import pandas as pd

from celine.api import Result, RunContext
from celine.experiments.dynasor import batch, online, plots
from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    SelfConsistencyProgram,
    TreeSearchProgram,
)

# multiples of the fixed budget's estimated capacity; dense where the curves cross 90%
RATE_FACTORS = (0.125, 0.1875, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 2.0)


def latency_key(cfg, ctx: RunContext) -> str:
    """What the measured latency depends on: the machine, the model and the timed shapes."""
    import hashlib
    import json
    import os
    import platform

    lm = ctx.task.lm()
    settings = dict(
        v=1,
        host=platform.node(),
        machine=platform.machine(),
        model=str(lm.path),
        model_meta=lm.meta.get("key", ""),
        device=str(ctx.hardware.device),
        threads=os.environ.get("OMP_NUM_THREADS", ""),
        batch_sizes=list(cfg.latency_batch_sizes),
        prompt_lens=list(cfg.latency_prompt_lens),
    )
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def latency_model(cfg, ctx: RunContext):
    """Iteration latency fitted to timed forward passes of the task's real model, measured once
    per machine + model and cached: re-timing on a loaded machine at every run moved the
    headline ratio between runs (issue 24), a cached fit keeps the comparison fixed."""
    import json
    from pathlib import Path

    from celine.serving.latency import fit_latency_model, measure_latency

    path = Path(ctx.outputs_dir) / "cache" / "dynasor" / f"latency-{latency_key(cfg, ctx)}.csv"
    if path.is_file():
        df = pd.read_csv(path)
        ctx.log.info("latency measurements cached in %s", path.name)
    else:
        lm = ctx.task.lm()
        ctx.log.info("timing forward passes of the model for the batch-latency model (once)")
        df = measure_latency(
            lm.model,
            batch_sizes=tuple(cfg.latency_batch_sizes),
            prompt_lens=tuple(cfg.latency_prompt_lens),
            device=ctx.hardware.device,
            repeats=5,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
    model = fit_latency_model(df)
    ctx.log.info("latency model (fit R^2 %.3f): %s", model.r2, json.dumps(model.to_dict()))
    return model, df


def capacity(setting: online.OnlineSetting, pools, cap: int) -> float:
    """Programs/s a fully batched engine sustains at the fixed budget (rough, for the sweep)."""
    mean_len = float(np.mean([t for p in pools for t in online.unit_tokens(p)]))
    b = setting.max_num_seqs
    t_iter = setting.latency.iteration_time(0, b, int(b * online.mean_decode_context(pools)))
    tokens_per_s = b / t_iter
    return tokens_per_s / (cap * mean_len)


def run_online(cfg, ctx: RunContext) -> Result:
    task = ctx.task
    # SC programs replay the chain pools, tree programs the searches certaindex_tree caches
    if cfg.tree:
        cal, test = task.tree_pools(cfg)
        program = TreeSearchProgram
    else:
        cal, test = task.pools()
        program = SelfConsistencyProgram
    seeds = task.seeds()
    from celine.experiments.dynasor.method import calibrate

    tau, _, _ = calibrate(cfg, cal, seeds, ctx.log, program)
    stop_frac, _ = batch.replay(
        cal,
        lambda: CertaindexPolicy(cfg.detect_at, cfg.cap, entropy_threshold=tau),
        seeds,
        program,
    )
    latency, lat_df = latency_model(cfg, ctx)
    prior = float(np.mean([t for p in cal for t in online.unit_tokens(p)]))
    setting = online.OnlineSetting(
        latency=latency,
        max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        kv_capacity_tokens=cfg.kv_capacity_tokens,
        detect_at=cfg.detect_at,
        cap=cfg.cap,
        threshold=tau,
        continue_prob=1.0 - stop_frac.stopped_early,
        base_deadline=1.0,
        starvation_s=1.0,
        prior_len=prior,
    )
    # base deadline: 2x an isolated fixed-budget program of median length (paper: a fixed
    # per-workload base, e.g. 240 s for SC/MATH)
    if cfg.base_deadline_s is None:
        med = sorted(test, key=lambda p: float(np.mean(online.unit_tokens(p))))[len(test) // 2]
        base = 2.0 * online.isolated_latency(med, setting, cfg.cap, program)
    else:
        base = cfg.base_deadline_s
    setting.base_deadline = base
    setting.starvation_s = cfg.starvation_s if cfg.starvation_s is not None else 3.0 * base
    cap_rate = capacity(setting, test, cfg.cap)
    rates = list(cfg.rates) or [round(cap_rate * f, 4) for f in RATE_FACTORS]
    ctx.log.info(
        "tau=%.2f, base deadline %.3f s, fixed-budget capacity ~%.2f programs/s, rates %s",
        tau,
        base,
        cap_rate,
        rates,
    )

    from celine.serving.arrivals import poisson_arrivals

    rows, met_rows, by_rate = [], [], {}
    for t in range(cfg.trace_seeds):
        # one trace seed = which recorded programs arrive, their chain order and arrival times;
        # every scheduler runs the very same trace (a paired comparison)
        rng = np.random.default_rng(ctx.seed * 1000 + t)
        picks = rng.integers(0, len(test), size=cfg.n_programs).tolist()
        orders = [rng.permutation(test[k].units).tolist() for k in picks]
        for i, rate in enumerate(rates):
            arrivals = poisson_arrivals(rate, cfg.n_programs, seed=ctx.seed * 1000 + t * 97 + i)
            for name in cfg.schedulers:
                progs = online.simulate(
                    name, test, picks, orders, arrivals.tolist(), setting, program
                )
                if t == 0:
                    by_rate[(name, rate)] = progs
                lat = [p.finish - p.arrival for p in progs]
                rows.append(
                    {
                        "trace_seed": t,
                        "scheduler": name,
                        "rate": rate,
                        "attainment": online.attainment(progs, cfg.slo_scale, base),
                        "mean_latency": float(np.mean(lat)),
                        "p90_latency": float(np.percentile(lat, 90)),
                        "tokens_per_program": float(np.mean([p.tokens for p in progs])),
                        "accuracy": float(np.mean([p.program.correct for p in progs])),
                        "rounds_per_program": float(np.mean([p.rounds for p in progs])),
                        "serial_rounds_per_program": float(
                            np.mean([p.serial_rounds for p in progs])
                        ),
                    }
                )
                met_rows.extend(
                    {
                        "trace_seed": t,
                        "rate": rate,
                        "scheduler": name,
                        "program": p.pid,
                        "met": float(
                            p.finish
                            <= online.deadline(p.arrival, cfg.slo_scale, p.factor, base) + 1e-12
                        ),
                    }
                    for p in progs
                )
            last = rows[-len(cfg.schedulers) :]
            if t == 0:
                ctx.log_metrics(
                    {f"online/attainment_{r['scheduler']}": r["attainment"] for r in last}, step=i
                )
            ctx.log.info(
                "trace %d, rate %.3f: %s",
                t,
                rate,
                ", ".join(f"{r['scheduler']} {r['attainment']:.2f}" for r in last),
            )
    per_seed = pd.DataFrame(rows)
    met = pd.DataFrame(met_rows)
    sweep = (
        per_seed.groupby(["scheduler", "rate"], as_index=False)
        .mean(numeric_only=True)
        .drop(columns="trace_seed")
    )
    target = cfg.attainment_target
    sustain, censored = {}, {}
    for name, df in sweep.groupby("scheduler"):
        sustain[name] = online.sustainable_rate(list(df["rate"]), list(df["attainment"]), target)
        censored[name] = online.rate_censoring(list(df["rate"]), list(df["attainment"]), target)
        if censored[name]:
            ctx.log.warning(
                "%s: the sustainable rate %.3g is censored by the rate grid (%s); widen "
                "method.rates to measure it",
                name,
                sustain[name],
                censored[name],
            )
    rate_of = {  # per trace seed: the replicate of the online comparison
        t: {
            n: online.sustainable_rate(list(d["rate"]), list(d["attainment"]), target)
            for n, d in df.groupby("scheduler")
        }
        for t, df in per_seed.groupby("trace_seed")
    }
    ladder = ablation_ladder(cfg.schedulers, rate_of, met, rates, cap_rate)
    ratio_per_seed = []
    if "dynasor" in cfg.schedulers:
        for r in rate_of.values():
            best = max((r[b] for b in ("fcfs", "gang_fifo") if b in r), default=0.0)
            if best > 0:
                ratio_per_seed.append(r["dynasor"] / best)
    # SLO-scale sweep at half the fixed budget's estimated capacity (scheduling does not read
    # deadlines, so the same simulations serve every scale)
    slo_rate = min(rates, key=lambda r: abs(r - 0.5 * cap_rate))
    slo_rows = [
        {
            "scheduler": name,
            "slo_scale": s,
            "attainment": online.attainment(by_rate[(name, slo_rate)], s, base),
        }
        for name in cfg.schedulers
        for s in cfg.slo_scales
    ]
    slo = pd.DataFrame(slo_rows)
    tightest = {name: _tightest_scale(df, target) for name, df in slo.groupby("scheduler")}
    baselines = [s for s in cfg.schedulers if s in ("fcfs", "gang_fifo")]
    summary = pd.DataFrame(
        [
            {
                "scheduler": name,
                "sustainable_rate": sustain[name],
                "censored": censored[name],
                "rate_vs_dynasor": (sustain[name] / sustain["dynasor"])
                if "dynasor" in sustain and sustain["dynasor"] > 0
                else np.nan,
                "tightest_slo_scale": tightest[name],
                "tokens_per_program": float(
                    sweep[sweep.scheduler == name]["tokens_per_program"].mean()
                ),
                "rounds_per_program": float(
                    sweep[sweep.scheduler == name]["rounds_per_program"].mean()
                ),
                "serial_rounds_per_program": float(
                    sweep[sweep.scheduler == name]["serial_rounds_per_program"].mean()
                ),
                "accuracy": float(sweep[sweep.scheduler == name]["accuracy"].mean()),
            }
            for name in cfg.schedulers
        ]
    )
    _log_table(ctx, summary)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        ctx.log.info(
            "ablation ladder (each row against the row before it; intervals: 95%%, sustainable "
            "rate over %d trace seeds, attainment over programs)\n%s",
            cfg.trace_seeds,
            ladder.to_string(index=False, float_format="%.4g"),
        )
    metrics: dict[str, float] = {}
    for name in cfg.schedulers:
        metrics[f"online/sustainable_rate_{name}"] = sustain[name]
        metrics[f"online/censored_{name}"] = float(bool(censored[name]))
    for row in ladder.itertuples():
        if np.isfinite(row.rate_gain):
            metrics[f"online/gain_{row.scheduler}"] = row.rate_gain
    if "dynasor" in sustain:
        dyn = sweep[sweep.scheduler == "dynasor"]
        metrics["online/sustainable_rate"] = sustain["dynasor"]
        metrics["test/accuracy"] = float(dyn["accuracy"].mean())
        metrics["test/tokens_per_problem"] = float(dyn["tokens_per_program"].mean())
        best = max((sustain[b] for b in baselines), default=0.0)
        if best > 0:
            metrics["online/rate_ratio"] = sustain["dynasor"] / best
        for b in baselines:
            if sustain[b] > 0:
                metrics[f"online/rate_ratio_vs_{b}"] = sustain["dynasor"] / sustain[b]
            t_b, t_d = tightest.get(b, np.nan), tightest["dynasor"]
            if np.isfinite(t_b) and np.isfinite(t_d) and t_d > 0:
                metrics[f"online/slo_ratio_vs_{b}"] = t_b / t_d
    else:
        first = sweep[sweep.scheduler == cfg.schedulers[0]]
        metrics["test/accuracy"] = float(first["accuracy"].mean())
        metrics["test/tokens_per_problem"] = float(first["tokens_per_program"].mean())
    if len(ratio_per_seed) > 1:
        metrics["online/rate_ratio_seed_mean"] = float(np.mean(ratio_per_seed))
        metrics["online/rate_ratio_seed_se"] = float(
            np.std(ratio_per_seed, ddof=1) / np.sqrt(len(ratio_per_seed))
        )
    metrics.update(
        {
            "online/threshold": tau,
            "online/base_deadline_s": base,
            "online/capacity_estimate": cap_rate,
            "online/trace_seeds": float(cfg.trace_seeds),
            **{f"latency/{k}": v for k, v in latency.to_dict().items() if np.isfinite(v)},
        }
    )
    figs = {
        "attainment_vs_rate": plots.attainment_curves(
            sweep, "rate", cfg.attainment_target, f"SLO scale {cfg.slo_scale}"
        ),
        "attainment_vs_slo_scale": plots.attainment_curves(
            slo, "slo_scale", cfg.attainment_target, f"rate {slo_rate:.3g} programs/s"
        ),
    }
    programs = pd.concat(
        [online.program_table(by_rate[(n, slo_rate)]).assign(scheduler=n) for n in cfg.schedulers],
        ignore_index=True,
    )
    return Result(
        metrics=metrics,
        tables={
            "online_summary": summary,
            "ablation_ladder": ladder,
            "rate_sweep": sweep,
            "rate_sweep_per_trace": per_seed,
            "slo_sweep": slo,
            "latency_measurements": lat_df,
            "programs_at_capacity_rate": programs,
        },
        figures=figs,
        notes={"latency_model": str(latency.to_dict())},
    )


LADDER_RATE_FACTORS = (0.5, 1.0, 1.5, 2.0)  # rates (x estimated capacity) of the ladder table


def ablation_ladder(schedulers, rate_of: dict, met: pd.DataFrame, rates, cap_rate: float):
    """Each scheduler against the one listed before it (the README's online table): the ratio of
    sustainable rates with its 95% t-interval over trace seeds and the paired t-test's p, and the
    attainment gain at a few rates with a 95% bootstrap interval over programs (paired: the same
    program of the same trace under both schedulers)."""
    from celine import stats

    picked = sorted({min(rates, key=lambda r: abs(r - f * cap_rate)) for f in LADDER_RATE_FACTORS})
    rows = []
    for k, name in enumerate(schedulers):
        row = {"scheduler": name, "vs": schedulers[k - 1] if k else ""}
        own = {t: r[name] for t, r in rate_of.items()}
        row["sustainable_rate_trace_mean"] = float(np.mean(list(own.values())))
        row.update(rate_gain=np.nan, rate_gain_low=np.nan, rate_gain_high=np.nan, rate_p=np.nan)
        if k:
            prev = {t: r[schedulers[k - 1]] for t, r in rate_of.items()}
            ratios = [own[t] / prev[t] for t in own if prev[t] > 0]
            d = stats.describe(ratios)
            row.update(rate_gain=d.mean, rate_gain_low=d.low, rate_gain_high=d.high)
            row["rate_p"] = stats.paired(own, prev).p
        for r in picked:
            at = met[met.rate == r]
            cur = at[at.scheduler == name].sort_values(["trace_seed", "program"])["met"]
            row[f"attain@{r:.3g}"] = float(cur.mean())
            if k:
                before = at[at.scheduler == schedulers[k - 1]].sort_values(
                    ["trace_seed", "program"]
                )["met"]
                diff, low, high = stats.bootstrap(
                    cur.to_numpy(), before.to_numpy(), statistic=lambda a, b: float(np.mean(a - b))
                )
                row[f"gain@{r:.3g}"] = diff
                row[f"gain@{r:.3g}_ci"] = f"[{low:+.3f}, {high:+.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def _tightest_scale(df: pd.DataFrame, target: float) -> float:
    ok = df[df["attainment"] >= target]
    return float(ok["slo_scale"].min()) if len(ok) else float("nan")


def _log_table(ctx, table) -> None:
    with pd.option_context("display.width", 160):
        ctx.log.info("online summary\n%s", table.to_string(index=False, float_format="%.4g"))
