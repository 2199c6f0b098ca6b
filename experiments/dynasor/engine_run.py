"""`celine run task=dynasor method=dynasor_cot engine=vllm`: Dynasor-CoT on a real vLLM.

The engine Celine starts runs in-process (`celine.serving`'s engine layer: vLLM's LLMEngine with
its EngineCore in a child process), so by default the chunks and probes are requests added to
that engine, not HTTP calls; `task.engine.base_url=http://...` sends the same requests to an
existing OpenAI-compatible server's `/v1/completions` instead (the reference's deployment).

1. Calibration split (when `method.calibrate`): chains probed after every `trace_step` tokens
   and never stopped, turned into recorded traces; (T, N) is chosen on them by the sim path's
   rule (`cot.choose_setting`: the largest lossless net saving).
2. Test split, live: chains in chunks of T with a probe after each, stopped on N consistent
   probes (`engine_programs.run_cot_chains`).
3. Test split, the baseline: the same chains in the same chunks and seeds without probes, to
   their end. The two runs share each chain's tokens up to the exit (checked and reported).

Reported like the sim path (`method.cot_claim`): accuracy, chain tokens, probe tokens, savings
gross and net of the probes (with and without prefix reuse) with problem-level intervals, plus
what the engine measured: prompt tokens it actually computed (prefix-cache misses) and wall
time (indicative on a shared machine).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from celine.api import Result


def _prefix_matches(live, full) -> float:
    """Fraction of chains whose early-stopped tokens are a prefix of the full chain's."""
    same = [f.tokens[: len(c.tokens)] == c.tokens for c, f in zip(live, full, strict=True)]
    return float(np.mean(same))


def _measured(chains) -> dict:
    """Per chain: prompt tokens the engine computed for chunks and probes (None: unknown)."""
    chunk, probe = zip(*(c.measured_prefill() for c in chains), strict=True)
    out = {}
    if all(x is not None for x in chunk):
        out["chunk_prefill"] = float(np.mean(chunk))
    if all(x is not None for x in probe):
        out["probe_prefill"] = float(np.mean(probe))
    return out


def run_cot_on_engine(ctx, cfg) -> Result:
    from celine.experiments.dynasor import cot
    from celine.experiments.dynasor.engine_programs import run_cot_chains, to_trace, wall
    from celine.experiments.dynasor.method import _show, choose_cot_setting, cot_claim
    from celine.llm.reasoning import format_prompt

    task = ctx.task
    cal, test = task.problems()
    tok = task.lm().tokenizer
    max_new = cfg.max_new_tokens or task.cfg.max_new_tokens
    suffix_len = len(tok(cfg.probe_suffix, add_special_tokens=False)["input_ids"])
    longest = max(len(tok(format_prompt(p))["input_ids"]) for p in [*cal, *test])
    max_model_len = longest + max_new + suffix_len + cfg.probe_tokens
    common = dict(
        trials=cfg.trials, max_new_tokens=max_new, temperature=cfg.temperature,
        probe_suffix=cfg.probe_suffix, probe_tokens=cfg.probe_tokens,
        probe_temperature=cfg.probe_temperature, probe_top_p=cfg.probe_top_p,
        hesitation_words=list(cfg.hesitation_words), log=ctx.log,
    )  # fmt: skip
    notes: dict[str, str] = {}
    times: dict[str, float] = {}
    with task.engine_session(max_model_len) as backend:
        notes["engine"] = f"{backend.backend}: {backend.version()}"
        cal_traces = None
        if cfg.calibrate:
            ctx.log.info("engine: %d calibration chains probed every %d tokens",
                         len(cal) * cfg.trials, cfg.trace_step)  # fmt: skip
            chains, times["calibration"] = wall(
                run_cot_chains, backend, tok, cal, interval=cfg.trace_step, n_consistent=None,
                probe=True, seed=ctx.seed + 7919, tag="cal", **common,
            )  # fmt: skip
            cal_traces = [to_trace(c, tok, suffix_len) for c in chains]
        interval, n_consistent, chosen_on = choose_cot_setting(
            ctx, cfg, cal_traces, cfg.trace_step, notes
        )
        # each pass starts from an empty prefix cache, so its measured prefill is its own
        backend.reset_prefix_cache()
        ctx.log.info("engine: Dynasor-CoT (T=%d, N=%d) on %d test chains", interval,
                     n_consistent, len(test) * cfg.trials)  # fmt: skip
        live, times["dynasor"] = wall(
            run_cot_chains, backend, tok, test, interval=interval, n_consistent=n_consistent,
            probe=True, seed=ctx.seed, tag="dyn", **common,
        )  # fmt: skip
        backend.reset_prefix_cache()
        ctx.log.info("engine: the same %d chains to their end (no probes)", len(live))
        full, times["full"] = wall(
            run_cot_chains, backend, tok, test, interval=interval, n_consistent=None,
            probe=False, seed=ctx.seed, tag="full", **common,
        )  # fmt: skip

    main = cot._point(
        "dynasor_cot", f"T={interval},N={n_consistent}",
        [(c.length, c.correct) for c in live], [sum(c.probe_generated) for c in live],
        [c.overhead(suffix_len) for c in live],
    )  # fmt: skip
    base = cot._point("full_chain", "to eos", [(c.length, c.correct) for c in full], [])
    metrics = cot_claim(ctx, cfg, live, main, base, interval, n_consistent, notes)
    m_live, m_full = _measured(live), _measured(full)
    metrics.update({
        "engine/paired_prefix_fraction": _prefix_matches(live, full),
        "engine/early_exit_fraction": float(np.mean([c.exit_at is not None for c in live])),
        "engine/probes_per_chain": float(np.mean([len(c.probes) for c in live])),
        **{f"engine/wall_s_{k}": v for k, v in times.items()},
        **{f"engine/dynasor_{k}_per_chain": v for k, v in m_live.items()},
        **{f"engine/full_{k}_per_chain": v for k, v in m_full.items()},
    })  # fmt: skip

    def row(name, p, chains, measured, seconds):
        return {
            "run": name, "setting": p.setting, "accuracy": p.accuracy,
            "accuracy_se": p.accuracy_se, "tokens/chain": p.tokens,
            "probe_tokens/chain": p.probe_tokens, "overhead_reuse": p.overhead_reuse,
            "overhead_noreuse": p.overhead_noreuse,
            "savings_gross": 1.0 - p.tokens / base.tokens,
            "savings_net_reuse": cot.net_savings(p, base, True),
            "savings_net_noreuse": cot.net_savings(p, base, False),
            "measured_chunk_prefill/chain": measured.get("chunk_prefill", np.nan),
            "measured_probe_prefill/chain": measured.get("probe_prefill", np.nan),
            "wall_s": seconds, "chains": len(chains),
        }  # fmt: skip

    headline = pd.DataFrame([
        row("dynasor_cot", main, live, m_live, times["dynasor"]),
        row("full_chain", base, full, m_full, times["full"]),
    ])  # fmt: skip
    _show(ctx, f"Dynasor-CoT on the engine ({notes['engine']}); T, N {chosen_on}", headline)
    chains = pd.DataFrame([
        {"chain": j, "problem": c.problem, "answer": c.answer, "dynasor_answer": c.final,
         "dynasor_tokens": c.length, "exit_at": c.exit_at, "probes": len(c.probes),
         "probe_tokens": sum(c.probe_generated), "full_answer": f.final,
         "full_tokens": f.length, "same_prefix": f.tokens[: c.length] == c.tokens}
        for j, (c, f) in enumerate(zip(live, full, strict=True))
    ])  # fmt: skip
    notes["chosen_on"] = chosen_on
    notes["pairing"] = (
        "each chunk k of chain c samples with its own seed, so the full-chain run repeats the "
        "Dynasor-CoT run's tokens up to the exit (engine/paired_prefix_fraction)"
    )
    metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    return Result(metrics=metrics, tables={"headline": headline, "chains": chains}, notes=notes)


# -- self-consistency stopped by certaindex -------------------------------------------------------
def _pools_from_programs(programs, problems, prompts):
    """Live fixed-budget programs as cached-pool records, so the batch path's replay and
    calibration run on the engine's own samples. Samples are stored by sample index (their
    seed), not in finishing order: the replay's random orders then depend on the samples only,
    not on the engine's timing (in finishing order, the in-process and HTTP deployments drew
    the same samples but calibrated tau 1.0 and 0.0 on the 48 calibration problems)."""
    from celine.experiments.dynasor.pool import ProblemPool

    pools = []
    for g, p, prompt in zip(programs, problems, prompts, strict=True):
        order = sorted(range(g.knob), key=lambda j: g.sample_index[j])
        answers = [g.samples[j] for j in order]
        tokens = [len(g.sample_tokens[j]) for j in order]
        pools.append(
            ProblemPool(p.question, p.answer, p.steps, len(prompt), answers, tokens, [1.0] * g.knob)
        )
    return pools


def run_sc_on_engine(ctx, cfg) -> Result:
    """`method=certaindex engine=vllm`: SC programs whose samples are engine requests.

    Calibration split: fixed-budget programs (cap samples each) on the engine, replayed by the
    batch path to choose tau. Test split, the same per-sample seeds in every run (the same
    samples, paired by problem): Dynasor in two rounds (`detect_at` samples, then the rest
    only if certaindex fails: the paper's static policy), Dynasor with all `cap` samples at
    once and the outstanding ones aborted when certaindex passes at `detect_at` finished, the
    fixed budget, and the batch path's replay of the fixed budget's samples (what the engine
    changes: the samples that finish first decide, and aborted ones have spent tokens)."""
    from celine.api import ConfigError
    from celine.experiments.dynasor import batch
    from celine.experiments.dynasor.engine_programs import run_sc_programs, wall
    from celine.experiments.dynasor.method import _show, calibrate
    from celine.experiments.dynasor.programs import CertaindexPolicy
    from celine.llm.reasoning import format_prompt, parse_boxed, parse_boxed_str
    from celine.serving.completions import Sampling

    if cfg.reward_threshold is not None:
        raise ConfigError("method.reward_threshold", cfg.reward_threshold,
                          "null with engine=vllm (the entropy certaindex only)")  # fmt: skip
    task = ctx.task
    cal, test = task.problems()
    tok = task.lm().tokenizer
    tcfg = task.cfg
    sampling = Sampling(tcfg.max_new_tokens, tcfg.temperature, tcfg.top_p)

    def prompts_of(problems):
        return [tok(format_prompt(p))["input_ids"] for p in problems]

    def answer_of(problems):
        parse = parse_boxed if isinstance(problems[0].answer, int) else parse_boxed_str
        return lambda ids: parse(tok.decode(ids, skip_special_tokens=True))

    longest = max(map(len, prompts_of([*cal, *test])))
    times: dict[str, float] = {}
    with task.engine_session(longest + tcfg.max_new_tokens) as backend:
        engine = f"{backend.backend}: {backend.version()}"
        tau = cfg.entropy_threshold
        kw = dict(answer_of=answer_of(test), detect_at=cfg.detect_at, cap=cfg.cap,
                  sampling=sampling)  # fmt: skip
        if cfg.calibrate:
            cal_prompts = prompts_of(cal)
            cal_kw = {**kw, "answer_of": answer_of(cal)}
            progs, times["calibration"] = wall(
                run_sc_programs, backend, cal_prompts, entropy_threshold=None,
                seed=ctx.seed + 7919, tag="sc-cal", **cal_kw,
            )  # fmt: skip
            pools = _pools_from_programs(progs, cal, cal_prompts)
            tau, _, _ = calibrate(cfg, pools, task.seeds(), ctx.log)
        test_prompts = prompts_of(test)
        answers = [p.answer for p in test]
        dyn, times["dynasor"] = wall(
            run_sc_programs, backend, test_prompts, entropy_threshold=tau, seed=ctx.seed,
            answers=answers, first_round=cfg.detect_at, tag="sc-dyn", **kw,
        )  # fmt: skip
        dyn_all, times["dynasor_abort"] = wall(
            run_sc_programs, backend, test_prompts, entropy_threshold=tau, seed=ctx.seed,
            answers=answers, tag="sc-abort", **kw,
        )  # fmt: skip
        full, times["fixed_budget"] = wall(
            run_sc_programs, backend, test_prompts, entropy_threshold=None, seed=ctx.seed,
            answers=answers, tag="sc-fix", **kw,
        )  # fmt: skip
    # the batch path on the fixed budget's own samples, replayed in one random order
    test_pools = _pools_from_programs(full, test, test_prompts)
    replayed, _ = batch.replay(
        test_pools, lambda: CertaindexPolicy(cfg.detect_at, cfg.cap, entropy_threshold=tau),
        [ctx.seed],
    )  # fmt: skip

    def row(name, progs, seconds):
        return {
            "run": name, "accuracy": float(np.mean([g.correct for g in progs])),
            "tokens/problem": float(np.mean([g.tokens for g in progs])),
            "samples_finished/problem": float(np.mean([g.knob for g in progs])),
            "aborted/problem": float(np.mean([len(g.aborted) for g in progs])),
            "stopped_early": float(np.mean([g.stopped_early for g in progs])),
            "wall_s": seconds,
        }  # fmt: skip

    headline = pd.DataFrame([
        row(f"Dynasor, two rounds (entropy >= {tau:.2f} at {cfg.detect_at}, then the rest)",
            dyn, times["dynasor"]),
        row(f"Dynasor, all {cfg.cap} at once, outstanding aborted at {cfg.detect_at}", dyn_all,
            times["dynasor_abort"]),
        row(f"fixed budget on the engine ({cfg.cap} samples)", full, times["fixed_budget"]),
        {"run": "batch replay of the fixed budget's samples (sim path)",
         "accuracy": replayed.accuracy, "tokens/problem": replayed.tokens,
         "samples_finished/problem": replayed.chains, "stopped_early": replayed.stopped_early},
    ])  # fmt: skip
    _show(ctx, f"SC on the engine ({engine}), {len(test)} test problems", headline)
    cmp = batch.compare(
        np.array([float(g.correct) for g in dyn]), np.array([float(g.tokens) for g in dyn]),
        np.array([float(g.correct) for g in full]), np.array([float(g.tokens) for g in full]),
        min_baseline_accuracy=cfg.min_baseline_accuracy, seed=ctx.seed,
    )  # fmt: skip
    cmp_abort = batch.compare(
        np.array([float(g.correct) for g in dyn_all]),
        np.array([float(g.tokens) for g in dyn_all]),
        np.array([float(g.correct) for g in full]), np.array([float(g.tokens) for g in full]),
        min_baseline_accuracy=cfg.min_baseline_accuracy, seed=ctx.seed,
    )  # fmt: skip
    # equal accuracy: the problem-level 95% interval of the accuracy gap reaches 0
    equal = {} if cmp.refused else {"test/equal_accuracy": float(cmp.gap_high >= 0.0)}
    metrics = {
        **equal,
        **cmp_abort.metrics("abort"),
        "test/accuracy": headline.at[0, "accuracy"],
        "test/tokens_per_problem": headline.at[0, "tokens/problem"],
        "test/chains_per_problem": headline.at[0, "samples_finished/problem"],
        "test/stopped_early": headline.at[0, "stopped_early"],
        "test/aborted_per_problem": headline.at[0, "aborted/problem"],
        "abort/accuracy": headline.at[1, "accuracy"],
        "abort/tokens_per_problem": headline.at[1, "tokens/problem"],
        "abort/aborted_per_problem": headline.at[1, "aborted/problem"],
        "baseline/accuracy": headline.at[2, "accuracy"],
        "baseline/tokens_per_problem": headline.at[2, "tokens/problem"],
        "calibration/threshold": float(tau),
        "replay/tokens_per_problem": replayed.tokens,
        "replay/accuracy": replayed.accuracy,
        **cmp.metrics("test"),
        **{f"engine/wall_s_{k}": v for k, v in times.items()},
    }
    notes = {"engine": engine}
    if cmp.refused:
        ctx.log.warning("no savings claim: %s", cmp.refused)
        notes["claim_refused"] = cmp.refused
    metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    return Result(metrics=metrics, tables={"headline": headline}, notes=notes)
