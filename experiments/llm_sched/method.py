"""The schedulers of llm_sched as methods: the learned ranker (ltr) and its baselines.

Every method replays the same held-out trace on the same measured latency model; a method that
predicts (ltr, sched_classifier, sched_prompt_len, oracle_sjf) also reports Kendall's tau of
its predicted order on the held-out prompts. `ltr` additionally simulates the baselines named in
`method.compare` in the same run, for the comparison table, the latency-vs-rate plot and the
approx-SJF tau sweep.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from celine.api import ConfigError, Result, RunContext
from celine.experiments.llm_sched import plots
from celine.experiments.llm_sched.config import ClassifierConfig
from celine.experiments.llm_sched.engine import serve_interleaved
from celine.experiments.llm_sched.ranking import approx_sjf_scores, kendall_tau_fast
from celine.experiments.llm_sched.serving import headline_metrics, serve_all, simulate


def train_keys(ctx: RunContext, kind: str, cfg, histories: dict | None = None):
    """Train a predictor on the train prompts; (rank keys of the test prompts, tau)."""
    from celine.experiments.llm_sched.predictor import rank_keys, train_predictor

    task = ctx.task
    tr_ids, tr_len = task.split_ids("train")
    te_ids, te_len = task.split_ids("test")
    prefix = "ltr" if kind == "listmle" else "classifier"
    model, hist = train_predictor(
        kind, cfg, tr_ids, tr_len, te_ids, te_len, vocab=task.vocab, pad_id=task.pad_id,
        max_len=task.cfg.max_new_tokens, lm_embeddings=task.lm_embeddings(), log=ctx.log,
        on_epoch=lambda r: ctx.log_metrics(
            {f"{prefix}/train_loss": r["loss"], f"{prefix}/test_tau": r["test_tau"]},
            step=r["epoch"],
        ),
    )  # fmt: skip
    if histories is not None:
        histories[prefix] = hist
    keys = rank_keys(kind, model, te_ids, task.pad_id, cfg)
    return keys, kendall_tau_fast(keys, te_len)


def baseline_keys(ctx: RunContext, name: str):
    """Keys of the predictor-free or trivial schedulers (None: the scheduler needs none)."""
    task = ctx.task
    if name == "sched_prompt_len":
        return task.prompt_lengths("test").astype(float)
    return None


class _Scheduling:
    """Shared run: keys -> simulate every workload -> metrics, tables, plot."""

    scheduler = ""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def keys(self, ctx: RunContext) -> tuple[np.ndarray | None, dict]:
        return baseline_keys(ctx, self.scheduler), {}

    def run(self, ctx: RunContext) -> Result:
        task = ctx.task
        keys, metrics = self.keys(ctx)
        if keys is not None and "predictor/test_tau" not in metrics:
            metrics["predictor/test_tau"] = kendall_tau_fast(keys, task.test["output_len"])
        check_engine_supports(task, [self.scheduler])
        runs = [(self.scheduler, self.cfg, keys)]
        with task.engine_session() as engine:
            workloads, info = task.workloads
            tables = {"workloads": info}
            if engine is None:
                table = serve_all(self.scheduler, self.cfg, keys, workloads, info, task.cfg,
                                  task.latency, ctx.log)  # fmt: skip
            else:
                table, tables["serving_replicates"] = serve_interleaved(
                    runs, workloads, info, task.cfg, engine, task.prompts,
                    task.cfg.engine.replicates, ctx.log,
                )  # fmt: skip
                tables.update(sim_twin(ctx, runs, table, metrics))
            tables["serving"] = table
        metrics.update(headline_metrics(table, task.cfg))
        metrics["serving/capacity_rps"] = info.attrs["capacity_rps"]
        figures = {"latency_vs_rate": plots.latency_vs_rate(table)}
        return Result(metrics=metrics, tables=tables, figures=figures)


def check_engine_supports(task, names) -> None:
    """On a real engine only the schedulers vLLM's priority hook expresses can run."""
    from celine.experiments.llm_sched.engine import ENGINE_SCHEDULERS

    if not task.on_engine:
        return
    for name in names:
        if name not in ENGINE_SCHEDULERS:
            raise ConfigError("method", name, "engine=vllm runs " + ", ".join(ENGINE_SCHEDULERS))


def engine_paired(ctx: RunContext, every: pd.DataFrame, metrics: dict) -> pd.DataFrame:
    """X / ltr on the engine per load, paired by replicate; logged and kept as a table."""
    from celine.experiments.llm_sched.engine import paired_over_replicates

    pairs = paired_over_replicates(every)
    for r in pairs.itertuples():
        key = f"engine_paired/{r.workload}/{r.scheduler}_over_ltr"
        metrics[key], metrics[key + "_low"], metrics[key + "_high"] = r.ratio, r.low, r.high
        metrics[key + "_p"] = r.p
    if len(pairs):
        ctx.log.info(
            "engine: each scheduler / ltr, paired over %d replicates (geometric mean, "
            "95%% CI, paired t-test on log ratios):\n%s",
            int(pairs["n"].max()),
            pairs.to_string(index=False, float_format=lambda v: f"{v:.3g}"),
        )
    return pairs


def sim_twin(ctx: RunContext, runs, engine_table, metrics) -> dict[str, pd.DataFrame]:
    """Replay the engine's workloads in the simulator (latency model calibrated on the engine's
    steps, the engine's settings) and compare: the simulator's error per scheduler and whether
    both order the schedulers alike. `runs`: (scheduler, method config, rank keys)."""
    from celine.experiments.llm_sched.engine import engine_vs_sim, sim_settings
    from celine.serving import LatencyModel

    task = ctx.task
    latency = LatencyModel(**task.calibration["latency"])
    scfg = sim_settings(task.cfg, task.engine)
    workloads, info = task.workloads
    sim = pd.concat([serve_all(name, mcfg, keys, workloads, info, scfg, latency)
                     for name, mcfg, keys in runs], ignore_index=True)  # fmt: skip
    cmp = engine_vs_sim(engine_table, sim)
    loads = cmp[cmp["workload"] != "burst"]
    metrics["engine_vs_sim/max_abs_error"] = float(loads["sim_error"].abs().max())
    metrics["engine_vs_sim/mean_abs_error"] = float(loads["sim_error"].abs().mean())
    metrics["engine_vs_sim/same_order_fraction"] = float(
        loads.groupby("workload")["same_order"].first().mean()
    )
    hi = engine_table[engine_table["workload"] != "burst"]["load_factor"].max()
    for r in cmp[cmp["workload"] == f"load_{hi:g}"].itertuples():
        metrics[f"engine_vs_sim/error_{r.scheduler}"] = float(r.sim_error)
    ctx.log.info("engine vs simulator (mean latency per token):\n%s", cmp.to_string())
    return {"serving_sim": sim, "engine_vs_sim": cmp}


class FCFSMethod(_Scheduling):
    scheduler = "fcfs"


class OracleSJFMethod(_Scheduling):
    scheduler = "oracle_sjf"

    def keys(self, ctx):
        return None, {"predictor/test_tau": 1.0}


class MLFQMethod(_Scheduling):
    scheduler = "mlfq"


class PromptLenMethod(_Scheduling):
    scheduler = "sched_prompt_len"


class ClassifierMethod(_Scheduling):
    scheduler = "sched_classifier"

    def keys(self, ctx):
        cfg = self.cfg
        if cfg.label_group_size is None:
            g = -(-ctx.task.cfg.max_new_tokens // 10)
            cfg = dataclasses.replace(cfg, label_group_size=g)
        keys, tau = train_keys(ctx, "class", cfg)
        return keys, {"predictor/test_tau": tau}


class LTR(_Scheduling):
    """The learned ranker (ListMLE) driving the rank scheduler, plus the comparison."""

    scheduler = "ltr"

    def run(self, ctx: RunContext) -> Result:
        task, cfg = ctx.task, self.cfg
        histories: dict = {}
        keys, tau = train_keys(ctx, "listmle", cfg, histories)
        te_len = task.test["output_len"].to_numpy()
        metrics = {"predictor/test_tau": tau}
        all_keys = {"ltr": keys, "oracle_sjf": te_len.astype(float)}
        if "sched_classifier" in cfg.compare:
            shared = {
                f.name: getattr(cfg, f.name)
                for f in dataclasses.fields(ClassifierConfig)
                if f.name not in ("name", "label_group_size") and hasattr(cfg, f.name)
            }
            ccfg = ClassifierConfig(label_group_size=-(-task.cfg.max_new_tokens // 10),
                                    **shared)  # fmt: skip
            all_keys["sched_classifier"], _ = train_keys(ctx, "class", ccfg, histories)
        all_keys["sched_prompt_len"] = task.prompt_lengths("test").astype(float)
        taus = pd.DataFrame(
            [dict(predictor=k, test_tau=kendall_tau_fast(v, te_len)) for k, v in all_keys.items()]
        )
        for r in taus.itertuples():
            metrics[f"tau/{r.predictor}"] = float(r.test_tau)

        compare = list(cfg.compare)
        if task.on_engine:
            from celine.experiments.llm_sched.engine import ENGINE_SCHEDULERS

            skipped = [n for n in compare if n not in ENGINE_SCHEDULERS]
            if skipped:
                ctx.log.info("engine=vllm: not run on the engine: %s", skipped)
            compare = [n for n in compare if n in ENGINE_SCHEDULERS]
        keys_of = {**all_keys, "ltr_starvation": keys, "oracle_sjf": None}
        runs = [("ltr", cfg, keys)] + [
            (name, cfg if name in ("sched_classifier", "sched_prompt_len", "ltr_starvation")
             else None, keys_of.get(name)) for name in compare
        ]  # fmt: skip
        result_tables = {"tau": taus}
        with task.engine_session() as engine:
            workloads, info = task.workloads
            if engine is None:
                tables = [serve_all(name, mcfg, k, workloads, info, task.cfg, task.latency,
                                    ctx.log) for name, mcfg, k in runs]  # fmt: skip
                table = pd.concat(tables, ignore_index=True)
            else:
                table, result_tables["serving_replicates"] = serve_interleaved(
                    runs, workloads, info, task.cfg, engine, task.prompts,
                    task.cfg.engine.replicates, ctx.log,
                )  # fmt: skip
                tables = [table[table["scheduler"] == "ltr"]]
                result_tables["engine_paired"] = engine_paired(
                    ctx, result_tables["serving_replicates"], metrics
                )
                result_tables.update(sim_twin(ctx, runs, table, metrics))
                sim = result_tables["serving_sim"]
                for k, v in _ratios(sim).items():
                    if k.startswith("high_load/"):
                        metrics[k.replace("high_load/", "high_load_sim/")] = v
        metrics.update(headline_metrics(tables[0], task.cfg))
        metrics["serving/capacity_rps"] = info.attrs["capacity_rps"]
        metrics.update(_ratios(table))

        result_tables.update({"serving": table, "comparison": _comparison(table),
                              "workloads": info})  # fmt: skip
        figures = {"latency_vs_rate": plots.latency_vs_rate(table),
                   "training": plots.training_curves(histories)}  # fmt: skip
        if "engine_vs_sim" in result_tables:
            figures["engine_vs_sim"] = plots.engine_vs_sim(result_tables["engine_vs_sim"])
        if cfg.tau_sweep and not task.on_engine and len(info[info["workload"] != "burst"]):
            sweep = self._tau_sweep(ctx, all_keys, taus, workloads, info)
            result_tables["tau_sweep"] = sweep
            figures["tau_sweep"] = plots.tau_sweep(sweep)
        return Result(metrics=metrics, tables=result_tables, figures=figures)

    def _tau_sweep(self, ctx, all_keys, taus, workloads, info) -> pd.DataFrame:
        """Latency at the highest load against tau: approx-SJF (a fraction p of the oracle
        estimates shuffled) and the trained predictors placed on the same axes."""
        from celine.serving.metrics import summarize

        task, cfg = ctx.task, self.cfg
        hi = info[info["workload"] != "burst"].sort_values("load_factor").iloc[-1]["workload"]
        te_len = task.test["output_len"].to_numpy()
        rows = []
        for p in cfg.tau_sweep:
            est = approx_sjf_scores(te_len, p, seed=task.cfg.sim_seed)
            res = simulate(workloads[hi], _rank(cfg), est, task.cfg, task.latency)
            rows.append(dict(kind="sweep", label=f"p={p:g}", tau=kendall_tau_fast(est, te_len),
                             **summarize(res)))  # fmt: skip
        for name, keys in all_keys.items():
            res = simulate(workloads[hi], _rank(cfg), keys, task.cfg, task.latency)
            rows.append(dict(kind="predictor", label=name, tau=kendall_tau_fast(keys, te_len),
                             **summarize(res)))  # fmt: skip
        return pd.DataFrame(rows)


def _rank(cfg):
    from celine.serving import RankScheduler

    return RankScheduler(cfg.starvation_threshold, cfg.priority_quantum)


def _comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Mean latency per token: rows = workloads, columns = schedulers."""
    return table.pivot_table(
        index=["workload", "rate_rps"], columns="scheduler", values="mean_latency_per_token",
        sort=False,
    ).reset_index()  # fmt: skip


def _ratios(table: pd.DataFrame) -> dict[str, float]:
    out = {}
    loads = table[table["workload"] != "burst"]
    if loads.empty:
        return out
    hi = loads[loads["load_factor"] == loads["load_factor"].max()].set_index("scheduler")
    lpt = hi["mean_latency_per_token"]
    for other in ("fcfs", "oracle_sjf", "mlfq", "ltr_starvation", "sched_classifier",
                  "sched_prompt_len"):  # fmt: skip
        if other in lpt.index:
            out[f"high_load/{other}_over_ltr"] = float(lpt[other] / lpt["ltr"])
    for name, wait in hi["max_wait"].items():  # fairness: max(TTFT, inter-token gap)
        out[f"fairness/max_wait_{name}"] = float(wait)
    burst = table[table["workload"] == "burst"].set_index("scheduler")
    if "fcfs" in burst.index:
        out["burst/fcfs_over_ltr"] = float(
            burst.loc["fcfs", "mean_latency"] / burst.loc["ltr", "mean_latency"]
        )
        out["synthetic/fcfs_over_ltr_time_to_target"] = float(
            burst.loc["fcfs", "time_to_target"] / burst.loc["ltr", "time_to_target"]
        )
    return out
