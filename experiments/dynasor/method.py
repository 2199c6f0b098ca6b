"""The dynasor methods: certaindex (Dynasor batch mode), fixed_budget, dynasor_cot,
dynasor_truncation and dynasor_online."""

from __future__ import annotations

import numpy as np
import pandas as pd

from celine.api import Result, RunContext
from celine.experiments.dynasor import batch, plots
from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    FixedBudgetPolicy,
    SelfConsistencyProgram,
    TreeSearchProgram,
)


def _on_engine(ctx: RunContext) -> bool:
    """engine=vllm (tasks without an engine setting, e.g. synthetic test tasks, run sim)."""
    return bool(getattr(ctx.task, "on_engine", False))


def _sim_only(ctx: RunContext, method: str) -> None:
    """engine=vllm runs method=dynasor_cot and method=certaindex (SC, `engine_run.py`); the
    other methods replay HF-sampled pools and would ignore the engine silently."""
    from celine.api import ConfigError

    if _on_engine(ctx):
        raise ConfigError("engine", ctx.task.cfg.engine.name,
                          f"sim for method={method} (engine=vllm runs method=dynasor_cot "
                          "or method=certaindex)")  # fmt: skip


def _show(ctx: RunContext, title: str, table: pd.DataFrame) -> None:
    """The headline table, printed in the run's log (and console) as well as saved."""
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        ctx.log.info("%s\n%s", title, table.to_string(index=False, float_format="%.4g"))


def _per_difficulty(runs_by_policy: dict[str, list], unit: str = "chains") -> pd.DataFrame:
    rows = []
    for name, runs in runs_by_policy.items():
        for seed_runs in runs:
            for prog in seed_runs:
                rows.append(
                    {
                        "policy": name,
                        "steps": prog.pool.steps,
                        "correct": prog.correct,
                        "tokens": sum(prog.tokens),
                        unit: prog.knob,
                    }
                )
    frame = pd.DataFrame(rows)
    return (
        frame.groupby(["policy", "steps"])
        .agg(accuracy=("correct", "mean"), tokens=("tokens", "mean"), **{unit: (unit, "mean")})
        .reset_index()
    )


def calibrate(
    cfg, cal, seeds, log, program=SelfConsistencyProgram
) -> tuple[float, str, pd.DataFrame]:
    """Profiler-guided calibration on the calibration split: the most aggressive threshold
    that loses no accuracy against the same program at its cap. Returns (tau, key, curve)."""
    key = "entropy_threshold" if cfg.entropy_threshold is not None else "reward_threshold"
    configured = getattr(cfg, key)
    fixed = {
        k: getattr(cfg, k, None)
        for k in ("entropy_threshold", "reward_threshold", "reward_aggregate")
        if k != key and hasattr(cfg, k)
    }
    if not getattr(cfg, "calibrate", False):
        return configured, key, pd.DataFrame()
    base, _ = batch.replay(cal, lambda: FixedBudgetPolicy(cfg.cap), seeds, program)
    curve = batch.certaindex_curve(
        cal, cfg.detect_at, cfg.cap, cfg.calibration_grid, seeds, key=key, program=program, **fixed
    )
    tau = batch.calibrate_threshold(curve, base.accuracy)
    log.info(
        "calibrated %s = %.2f on %d calibration problems (baseline accuracy %.3f)",
        key,
        tau,
        len(cal),
        base.accuracy,
    )
    frame = batch.curve_frame(curve, "certaindex")
    frame["baseline_accuracy"] = base.accuracy
    return tau, key, frame


class Certaindex:
    """Dynasor batch mode on self-consistency: detect at `detect_at`, stop the programs whose
    certaindex passes, grant the others the cap; against the fixed budget on the same chains."""

    program = SelfConsistencyProgram
    unit = "chains"
    title = "Self-consistency on the tiny reasoner (test split)"

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def pools(self, task, reward_model):
        return task.pools(reward_model)

    def run(self, ctx: RunContext) -> Result:
        cfg, task, program, unit = self.cfg, ctx.task, self.program, self.unit
        if _on_engine(ctx) and program is SelfConsistencyProgram:
            from celine.experiments.dynasor.engine_run import run_sc_on_engine

            return run_sc_on_engine(ctx, cfg)
        _sim_only(ctx, cfg.name)
        uses_reward = cfg.reward_threshold is not None
        cal, test = self.pools(task, cfg.reward_model if uses_reward else None)
        seeds = task.seeds()
        tau, key, cal_curve = calibrate(cfg, cal, seeds, ctx.log, program)
        kw = {
            "entropy_threshold": cfg.entropy_threshold,
            "reward_threshold": cfg.reward_threshold,
            "reward_aggregate": cfg.reward_aggregate,
            key: tau,
        }
        dyn, dyn_runs = batch.replay(
            test, lambda: CertaindexPolicy(cfg.detect_at, cfg.cap, **kw), seeds, program
        )
        base, base_runs = batch.replay(test, lambda: FixedBudgetPolicy(cfg.cap), seeds, program)
        small, _ = batch.replay(test, lambda: FixedBudgetPolicy(cfg.detect_at), seeds, program)
        ctx.log.info("replaying the curves on %d test problems x %d seeds", len(test), len(seeds))
        fixed_curve = batch.fixed_budget_curve(test, cfg.cap, seeds, program)
        curve_kw = {k: v for k, v in kw.items() if k != key}
        dyn_curve = batch.certaindex_curve(
            test,
            cfg.detect_at,
            cfg.cap,
            cfg.calibration_grid,
            seeds,
            key=key,
            program=program,
            **curve_kw,
        )
        length_curve = batch.length_curve(test, cfg.detect_at, cfg.cap, seeds, program=program)
        signal = batch.certaindex_signal(test, cfg.detect_at, seeds[0], program)

        savings = 1.0 - dyn.tokens / base.tokens
        headline = pd.DataFrame(
            [
                {
                    "method": f"Dynasor ({key.split('_')[0]} >= {tau:.2f} at {cfg.detect_at})",
                    "accuracy": dyn.accuracy,
                    "accuracy_se": dyn.accuracy_se,
                    "tokens/problem": dyn.tokens,
                    f"{unit}/problem": dyn.chains,
                    "token_savings": savings,
                },
                {
                    "method": f"fixed budget ({cfg.cap} {unit})",
                    "accuracy": base.accuracy,
                    "accuracy_se": base.accuracy_se,
                    "tokens/problem": base.tokens,
                    f"{unit}/problem": base.chains,
                    "token_savings": 0.0,
                },
                {
                    "method": f"fixed budget ({cfg.detect_at} {unit})",
                    "accuracy": small.accuracy,
                    "accuracy_se": small.accuracy_se,
                    "tokens/problem": small.tokens,
                    f"{unit}/problem": small.chains,
                    "token_savings": 1.0 - small.tokens / base.tokens,
                },
            ]
        )
        _show(
            ctx, f"Dynasor vs fixed budget, {len(test)} test problems, {len(seeds)} seeds", headline
        )
        curves = pd.concat(
            [
                batch.curve_frame(fixed_curve, "fixed_budget"),
                batch.curve_frame(dyn_curve, "certaindex"),
                batch.curve_frame(length_curve, "baseline_length"),
            ],
            ignore_index=True,
        )
        fig = plots.tokens_accuracy(
            {
                f"fixed budget (n {unit})": batch.curve_frame(fixed_curve),
                f"certaindex (tau sweep, detect@{cfg.detect_at}, cap {cfg.cap})": batch.curve_frame(
                    dyn_curve
                ),
                "baseline-length": batch.curve_frame(length_curve),
            },
            {f"calibrated tau={tau:.2f}": (dyn.tokens, dyn.accuracy)},
            title=self.title,
        )
        cmp = batch.compare(
            *batch.per_problem(dyn_runs),
            *batch.per_problem(base_runs),
            min_baseline_accuracy=cfg.min_baseline_accuracy,
            seed=ctx.seed,
        )
        metrics = {
            "test/accuracy": dyn.accuracy,
            "test/accuracy_se": dyn.accuracy_se,
            "test/tokens_per_problem": dyn.tokens,
            f"test/{unit}_per_problem": dyn.chains,
            "test/stopped_early": dyn.stopped_early,
            "baseline/accuracy": base.accuracy,
            "baseline/accuracy_se": base.accuracy_se,
            "baseline/tokens_per_problem": base.tokens,
            "calibration/threshold": tau,
            **cmp.metrics("test"),
            **batch.signal_quality(signal),
        }
        if cmp.refused:
            ctx.log.warning("no savings claim: %s", cmp.refused)
        else:
            # equal accuracy: the problem-level 95% interval of the accuracy gap reaches 0
            metrics["test/equal_accuracy"] = float(cmp.gap_high >= 0.0)
            metrics["test/savings_at_equal_accuracy"] = batch.savings_at_equal_accuracy(
                dyn_curve, fixed_curve
            )
            ctx.log.info(
                "Dynasor vs fixed budget over %d problems (95%% bootstrap): accuracy gap %+.3f "
                "[%+.3f, %+.3f], token savings %.3f [%.3f, %.3f]",
                len(test),
                cmp.gap,
                cmp.gap_low,
                cmp.gap_high,
                cmp.savings,
                cmp.savings_low,
                cmp.savings_high,
            )
        metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
        tables = {
            "headline": headline,
            "curves": curves,
            "per_difficulty": _per_difficulty(
                {"certaindex": dyn_runs, "fixed_budget": base_runs}, unit
            ),
            "signal": signal,
        }
        if not cal_curve.empty:
            tables["calibration"] = cal_curve
        return Result(
            metrics=metrics,
            tables=tables,
            figures={"tokens_vs_accuracy": fig},
            notes={
                "replay": f"{unit} are sampled once per problem (pool) and replayed in a random "
                f"order per seed; they are i.i.d. given the problem, so this equals fresh sampling"
            },
        )


class CertaindexTree(Certaindex):
    """Dynasor batch mode on a tree-search program (Rebase or beam, `tree_search.py`): detect
    at `detect_at` searches, stop when certaindex over their leaves passes, else grant up to
    `cap` searches; against the fixed budget on the same searches."""

    program = TreeSearchProgram
    unit = "searches"

    @property
    def title(self) -> str:
        return f"{self.cfg.program} tree search (width {self.cfg.width}) on the tiny reasoner"

    def pools(self, task, reward_model):
        return task.tree_pools(self.cfg, reward_model)


class FixedBudget:
    """Baseline-even: the same self-consistency program with its knob fixed at `cap`."""

    program = SelfConsistencyProgram
    unit = "chains"

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def test_pools(self, task):
        return task.test_pools()

    def run(self, ctx: RunContext) -> Result:
        _sim_only(ctx, self.cfg.name)
        cfg, task, program, unit = self.cfg, ctx.task, self.program, self.unit
        test = self.test_pools(task)
        seeds = task.seeds()
        out, runs = batch.replay(test, lambda: FixedBudgetPolicy(cfg.cap), seeds, program)
        curve = batch.fixed_budget_curve(test, cfg.cap, seeds, program)
        frame = batch.curve_frame(curve, "fixed_budget")
        _show(ctx, f"fixed budget on {len(test)} test problems", frame)
        fig = plots.tokens_accuracy({f"fixed budget (n {unit})": frame}, title="Fixed budget")
        return Result(
            metrics={
                "test/accuracy": out.accuracy,
                "test/accuracy_se": out.accuracy_se,
                "test/tokens_per_problem": out.tokens,
                f"test/{unit}_per_problem": out.chains,
            },
            tables={
                "curves": frame,
                "per_difficulty": _per_difficulty({"fixed_budget": runs}, unit),
            },
            figures={"tokens_vs_accuracy": fig},
        )


class FixedBudgetTree(FixedBudget):
    """Baseline-even for tree search: every problem gets `cap` searches."""

    program = TreeSearchProgram
    unit = "searches"

    def test_pools(self, task):
        return task.tree_pools(self.cfg, None, splits=("test",))[0]


def _budgets(traces, step: int) -> list[int]:
    longest = max(t.length for t in traces)
    return list(range(step, longest + step, step))


class DynasorCot:
    """Dynasor-CoT on one chain per trial: probe every `probe_interval` tokens, exit on
    `n_consistent` agreeing certain probes; against full chains and token budgets. With
    `calibrate`, (T, N) is chosen on calibration-split chains and reported on the test split."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        cfg = self.cfg
        if _on_engine(ctx):
            from celine.experiments.dynasor.engine_run import run_cot_on_engine

            return run_cot_on_engine(ctx, cfg)
        cal = ctx.task.traces(cfg, split="calibration") if cfg.calibrate else None
        traces = ctx.task.traces(cfg)
        return _cot_compare(
            ctx,
            cfg,
            traces,
            cfg.trace_step,
            _budgets(traces, cfg.trace_step),
            f"Dynasor-CoT on {len(traces)} test chains ({cfg.trials} per test problem)",
            cal_traces=cal,
        )


def _by_problem(traces, values) -> np.ndarray:
    """Per-chain values averaged per problem (the unit of the bootstrap)."""
    frame = pd.DataFrame({"problem": [t.problem for t in traces], "v": values})
    return frame.groupby("problem")["v"].mean().to_numpy(float)


def cot_claim(ctx, cfg, units, main, full, interval, n_consistent, notes) -> dict:
    """The CoT headline's metrics: Dynasor-CoT (`main`) against full chains on the same
    chains (`units`, one per chain, with `.problem`), savings gross and net of the probes
    (with and without prefix reuse) with problem-level 95% bootstrap intervals, the accuracy
    gap, and the refusal when the full chains are too weak to speak of equal accuracy."""
    from celine import stats

    def saving_ci(point, over):
        used = np.add(point.chain_tokens, over) if over is not None else point.chain_tokens
        return stats.bootstrap(
            _by_problem(units, used),
            _by_problem(units, full.chain_tokens),
            statistic=lambda a, b: 1.0 - float(a.sum()) / max(float(b.sum()), 1e-12),
            seed=ctx.seed,
        )

    gross = saving_ci(main, None)
    net_reuse = saving_ci(main, main.chain_reuse)
    net_noreuse = saving_ci(main, main.chain_noreuse)
    gap = stats.bootstrap(
        _by_problem(units, main.correct),
        _by_problem(units, full.correct),
        statistic=lambda a, b: float(np.mean(a - b)),
        seed=ctx.seed,
    )
    _, full_low, _ = stats.bootstrap(_by_problem(units, full.correct), statistic=np.mean)

    metrics = {
        "test/accuracy": main.accuracy,
        "test/accuracy_se": main.accuracy_se,
        "test/tokens_per_problem": main.tokens,
        "test/probe_tokens_per_problem": main.probe_tokens,
        "test/probe_overhead_reuse": main.overhead_reuse,
        "test/probe_overhead_noreuse": main.overhead_noreuse,
        "baseline/accuracy": full.accuracy,
        "baseline/accuracy_se": full.accuracy_se,
        "baseline/tokens_per_problem": full.tokens,
        "test/accuracy_gap": gap[0],
        "test/accuracy_gap_low": gap[1],
        "test/accuracy_gap_high": gap[2],
        "cot/probe_interval": float(interval),
        "cot/n_consistent": float(n_consistent),
    }
    refused = ""
    if full.accuracy < cfg.min_baseline_accuracy:
        refused = (
            f"full-chain accuracy {full.accuracy:.3f} is below min_baseline_accuracy="
            f"{cfg.min_baseline_accuracy}: no savings-at-equal-accuracy claim"
        )
    elif not full_low > 0.0:
        refused = f"full-chain accuracy {full.accuracy:.3f} has a 95% interval reaching 0"
    metrics["test/claim_refused"] = float(bool(refused))
    if refused:
        ctx.log.warning("no savings claim: %s", refused)
        notes["claim_refused"] = refused
    else:
        for name, (v, lo, hi) in (
            ("token_savings_gross", gross),
            ("token_savings", net_reuse),
            ("token_savings_noreuse", net_noreuse),
        ):
            metrics[f"test/{name}"] = v
            metrics[f"test/{name}_low"] = lo
            metrics[f"test/{name}_high"] = hi
        metrics["test/equal_accuracy"] = float(gap[2] >= 0.0)
        ctx.log.info(
            "T=%d N=%d on %d test chains (95%% bootstrap over problems): accuracy gap %+.3f "
            "[%+.3f, %+.3f]; savings gross %.3f [%.3f, %.3f], net with prefix reuse %.3f "
            "[%.3f, %.3f], net without %.3f [%.3f, %.3f]",
            interval,
            n_consistent,
            len(units),
            *gap,
            *gross,
            *net_reuse,
            *net_noreuse,
        )
    return metrics


def choose_cot_setting(ctx, cfg, cal_traces, step, notes) -> tuple[int, int, str]:
    """(T, N, where they come from): chosen on calibration traces when given (the grid's
    largest lossless net saving, `cot.choose_setting`), else the configured values."""
    from celine.experiments.dynasor import cot

    interval, n_consistent, chosen_on = cfg.probe_interval, cfg.n_consistent, "configured"
    if cal_traces:
        (interval, n_consistent), cal_grid, cal_full = cot.choose_setting(
            cal_traces, cfg.grid_intervals, cfg.grid_consistent, step
        )
        chosen_on = f"calibration split ({len(cal_traces)} chains)"
        ctx.log.info(
            "chose T=%d, N=%d on %d calibration chains (full-chain accuracy %.3f there)",
            interval,
            n_consistent,
            len(cal_traces),
            cal_full.accuracy,
        )
        notes["calibration_grid"] = "; ".join(
            f"{p.setting}: acc {p.accuracy:.3f}, net {cot.net_savings(p, cal_full, True):+.3f}"
            for p in cal_grid
        )
    return interval, n_consistent, chosen_on


def _cot_compare(ctx, cfg, traces, step, budgets, title, cal_traces=None) -> Result:
    """Dynasor-CoT at (probe_interval, n_consistent) (or the setting chosen on `cal_traces`),
    its grid, full chains and token budgets on the same test traces: the headline table with
    savings net of probe tokens and problem-level intervals, the curves and their plot."""
    from celine.experiments.dynasor import cot

    notes = {}
    interval, n_consistent, chosen_on = choose_cot_setting(ctx, cfg, cal_traces, step, notes)
    main = cot.cot_point(traces, interval, n_consistent, step)
    full = cot.full_point(traces)
    grid = [
        cot.cot_point(traces, i, n, step) for i in cfg.grid_intervals for n in cfg.grid_consistent
    ]
    trunc = [cot.truncation_point(traces, b, step) for b in budgets]
    forced = [cot.truncation_point(traces, b, step, forced=True) for b in budgets]

    def row(p):
        return {
            **p.row(),
            "savings_gross": 1.0 - p.tokens / full.tokens,
            "savings_net_reuse": cot.net_savings(p, full, True),
            "savings_net_noreuse": cot.net_savings(p, full, False),
        }

    headline = pd.DataFrame([row(main), row(full)])
    _show(ctx, f"{title}; T, N {chosen_on}", headline)
    frames = {
        "dynasor_cot (grid)": pd.DataFrame([row(p) for p in grid]),
        "truncation": pd.DataFrame([row(p) for p in trunc]),
        "budget forcing": pd.DataFrame([row(p) for p in forced]),
    }
    fig = plots.tokens_accuracy(
        frames,
        {
            f"T={interval}, N={n_consistent}": (main.tokens, main.accuracy),
            "full chain": (full.tokens, full.accuracy),
        },
        title=title,
    )
    metrics = cot_claim(ctx, cfg, traces, main, full, interval, n_consistent, notes)
    lossless = [p for p in grid if p.accuracy >= full.accuracy - full.accuracy_se]
    best = min(lossless, key=lambda p: p.tokens + p.overhead_reuse) if lossless else None
    if best is not None:
        # picked on the test chains themselves: optimistic, for reference only
        metrics["grid/best_lossless_net_savings_on_test"] = cot.net_savings(best, full, True)
    table = pd.concat([df.assign(curve=name) for name, df in frames.items()], ignore_index=True)
    notes["best_lossless_grid_point_on_test"] = best.setting if best else "none"
    notes["chosen_on"] = chosen_on
    metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
    return Result(
        metrics=metrics,
        tables={"headline": headline, "curves": table},
        figures={"cot_tokens_vs_accuracy": fig},
        notes=notes,
    )


class DynasorCotSynthetic:
    """The reference harness's offline replay (interval x N grid against truncation at
    1024..16384 tokens) on synthetic traces with explicit self-doubt: the mechanism at the
    paper's scale, without an LLM."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        _sim_only(ctx, self.cfg.name)
        from celine.experiments.dynasor.synthetic import synthetic_traces

        cfg = self.cfg
        traces = synthetic_traces(
            cfg.n_problems,
            cfg.trials,
            step=cfg.trace_step,
            max_tokens=cfg.max_tokens,
            flip_prob=cfg.flip_prob,
            hesitation_prob=cfg.hesitation_prob,
            seed=ctx.seed,
        )
        budgets = list(range(cfg.budget_step, cfg.max_tokens + 1, cfg.budget_step))
        return _cot_compare(
            ctx,
            cfg,
            traces,
            cfg.trace_step,
            budgets,
            f"Dynasor-CoT on {len(traces)} synthetic self-doubt traces",
        )


class Truncation:
    """Baseline for Dynasor-CoT: each chain gets at most `budget` tokens and is scored by its
    own (truncated) answer, as in the reference harness."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        _sim_only(ctx, self.cfg.name)
        from celine.experiments.dynasor import cot

        cfg = self.cfg
        traces = ctx.task.traces(cfg, probe=False)
        point = cot.truncation_point(traces, cfg.budget, 4)
        curve = pd.DataFrame(
            [cot.truncation_point(traces, b, 4).row() for b in _budgets(traces, 4)]
        )
        _show(ctx, f"truncation at {cfg.budget} tokens", pd.DataFrame([point.row()]))
        fig = plots.tokens_accuracy({"truncation": curve}, title="Token-budget truncation")
        return Result(
            metrics={
                "test/accuracy": point.accuracy,
                "test/accuracy_se": point.accuracy_se,
                "test/tokens_per_problem": point.tokens,
            },
            tables={"curves": curve},
            figures={"truncation_curve": fig},
        )


class DynasorOnline:
    """The online comparison: see `online.run_online`."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        _sim_only(ctx, self.cfg.name)
        from celine.experiments.dynasor.online_run import run_online

        return run_online(self.cfg, ctx)
