"""Batch mode: replay the chain pool under an allocation policy, over several seeds, and the
tokens-to-accuracy curves and profiler-guided calibration built on it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from celine.experiments.dynasor.pool import ProblemPool
from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    FixedBudgetPolicy,
    LengthPolicy,
    SelfConsistencyProgram,
    run_to_completion,
)


def orders(pools: Sequence[ProblemPool], seed: int) -> list[list[int]]:
    """One random order of each problem's chains: the draw order of seed `seed`."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(p.units).tolist() for p in pools]


@dataclass
class Outcome:
    policy: str
    setting: float  # the knob of the curve point (n, tau or a length)
    accuracy: float  # mean over seeds
    accuracy_se: float  # standard error over seeds
    tokens: float  # generated tokens per problem, mean over seeds
    chains: float  # chains per problem
    stopped_early: float  # fraction of programs stopped at detection

    def row(self) -> dict:
        return dict(self.__dict__)


def replay(
    pools: Sequence[ProblemPool],
    make_policy: Callable[[], object],
    seeds: Sequence[int],
    program=SelfConsistencyProgram,
) -> tuple[Outcome, list[list[SelfConsistencyProgram]]]:
    """Run every problem's program under the policy for each seed; mean and s.e. over seeds.
    `program` is the program class (self-consistency, or tree search over a tree pool)."""
    accs, toks, chains, early, runs = [], [], [], [], []
    policy = make_policy()
    for seed in seeds:
        progs = [
            run_to_completion(program(p, o, policy))
            for p, o in zip(pools, orders(pools, seed), strict=True)
        ]
        runs.append(progs)
        accs.append(np.mean([g.correct for g in progs]))
        toks.append(np.mean([sum(g.tokens) for g in progs]))
        chains.append(np.mean([g.knob for g in progs]))
        first = getattr(policy, "detect_at", None)
        early.append(np.mean([g.knob == first for g in progs]) if first else 0.0)
    se = float(np.std(accs, ddof=1) / math.sqrt(len(accs))) if len(accs) > 1 else 0.0
    out = Outcome(
        policy.name,
        float("nan"),
        float(np.mean(accs)),
        se,
        float(np.mean(toks)),
        float(np.mean(chains)),
        float(np.mean(early)),
    )
    return out, runs


def fixed_budget_curve(pools, cap: int, seeds, program=SelfConsistencyProgram) -> list[Outcome]:
    points = []
    for n in range(1, cap + 1):
        out, _ = replay(pools, lambda n=n: FixedBudgetPolicy(n), seeds, program)
        out.setting = float(n)
        points.append(out)
    return points


def certaindex_curve(
    pools,
    detect_at: int,
    cap: int,
    thresholds: Sequence[float],
    seeds,
    key: str = "entropy_threshold",
    program=SelfConsistencyProgram,
    **policy_kw,
) -> list[Outcome]:
    """Dynasor at each threshold of `key` (the other policy settings fixed)."""
    points = []
    for tau in thresholds:
        kw = {**policy_kw, key: tau}
        out, _ = replay(pools, lambda kw=kw: CertaindexPolicy(detect_at, cap, **kw), seeds, program)
        out.setting = float(tau)
        points.append(out)
    return points


def length_curve(
    pools, detect_at: int, cap: int, seeds, n_points: int = 8, program=SelfConsistencyProgram
) -> list[Outcome]:
    """Baseline-length at thresholds spread over the observed unit lengths (chains, trees)."""
    lengths = np.array([t for p in pools for t in _unit_tokens(p)])
    points = []
    for q in np.linspace(0.0, 1.0, n_points):
        limit = float(np.quantile(lengths, q))
        out, _ = replay(
            pools, lambda limit=limit: LengthPolicy(detect_at, cap, limit), seeds, program
        )
        out.setting = limit
        points.append(out)
    return points


def calibrate_threshold(curve: Sequence[Outcome], baseline_accuracy: float) -> float:
    """Profiler-guided calibration (paper App. D.2.2): the most aggressive threshold (the
    lowest tau) whose accuracy on the calibration split is not below the baseline's. If none
    matches the baseline, the most accurate one."""
    lossless = [p for p in curve if p.accuracy >= baseline_accuracy - 1e-12]
    if lossless:
        return min(p.setting for p in lossless)
    return max(curve, key=lambda p: (p.accuracy, p.setting)).setting


def _unit_tokens(pool) -> list[int]:
    trees = getattr(pool, "trees", None)
    return [t.tokens for t in trees] if trees is not None else list(pool.tokens)


def certaindex_signal(
    pools, detect_at: int, seed: int = 0, program=SelfConsistencyProgram
) -> pd.DataFrame:
    """Per problem: certaindex after `detect_at` units, aggregate correctness, difficulty."""
    rows = []
    for p, o in zip(pools, orders(pools, seed), strict=True):
        prog = program(p, o, FixedBudgetPolicy(detect_at))
        run_to_completion(prog)
        row = {"steps": p.steps, "certaindex": prog.certaindex, "correct": prog.correct}
        if hasattr(p, "correct"):  # a chain pool: how often a single chain is right
            row["pool_accuracy"] = float(np.mean(p.correct))
        rows.append(row)
    return pd.DataFrame(rows)


def signal_quality(frame: pd.DataFrame) -> dict[str, float]:
    """How well certaindex separates solved from unsolved programs (AUROC), and its rank
    correlation with difficulty (paper: Pearson/Kendall against steps-to-solve)."""
    from scipy.stats import kendalltau
    from sklearn.metrics import roc_auc_score

    out = {"signal/kendall_vs_steps": float(kendalltau(frame.certaindex, frame.steps)[0])}
    if frame.correct.nunique() == 2:
        out["signal/auroc_correct"] = float(roc_auc_score(frame.correct, frame.certaindex))
    return {k: v for k, v in out.items() if math.isfinite(v)}


def savings_at_equal_accuracy(curve: Sequence[Outcome], baseline: Sequence[Outcome]) -> float:
    """1 - tokens of the cheapest curve point that reaches the best baseline point's accuracy
    / that baseline point's tokens (nan if none reaches it)."""
    best = max(baseline, key=lambda p: (p.accuracy, -p.tokens))
    reach = [p for p in curve if p.accuracy >= best.accuracy - 1e-12]
    if not reach:
        return float("nan")
    return 1.0 - min(p.tokens for p in reach) / best.tokens


def per_problem(runs: Sequence[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """(correct, tokens) per problem, averaged over the replay seeds of `runs` (seed -> programs
    in problem order): the unit that problem-level intervals resample."""
    correct = np.mean([[float(g.correct) for g in seed] for seed in runs], axis=0)
    tokens = np.mean([[float(sum(g.tokens)) for g in seed] for seed in runs], axis=0)
    return correct, tokens


@dataclass
class Comparison:
    """A method against its baseline on the same problems and chains, with 95% bootstrap
    intervals over problems (paired), and whether a "savings at equal accuracy" claim is
    allowed at all."""

    accuracy: float
    baseline_accuracy: float
    baseline_accuracy_low: float
    gap: float  # accuracy - baseline accuracy
    gap_low: float
    gap_high: float
    savings: float  # 1 - tokens / baseline tokens
    savings_low: float
    savings_high: float
    refused: str  # why no "savings at equal accuracy" claim is made ('' when it is allowed)

    def metrics(self, prefix: str = "test") -> dict[str, float]:
        out = {
            f"{prefix}/accuracy_gap": self.gap,
            f"{prefix}/accuracy_gap_low": self.gap_low,
            f"{prefix}/accuracy_gap_high": self.gap_high,
            f"{prefix}/claim_refused": float(bool(self.refused)),
        }
        if not self.refused:
            out.update(
                {
                    f"{prefix}/token_savings": self.savings,
                    f"{prefix}/token_savings_low": self.savings_low,
                    f"{prefix}/token_savings_high": self.savings_high,
                }
            )
        return out


def compare(
    correct,
    tokens,
    base_correct,
    base_tokens,
    min_baseline_accuracy: float,
    seed: int = 0,
) -> Comparison:
    """Paired comparison over problems. The claim is refused when the baseline solves (almost)
    nothing: with a baseline near zero accuracy, any policy that stops early "keeps" it, and a
    large saving at equal accuracy says nothing about the method (issue 24: an untrained model
    calibrated tau=0 and reported big savings within one s.e.)."""
    from celine import stats

    c, t = np.asarray(correct, float), np.asarray(tokens, float)
    bc, bt = np.asarray(base_correct, float), np.asarray(base_tokens, float)
    acc, base_acc = float(c.mean()), float(bc.mean())
    _, base_low, _ = stats.bootstrap(bc, statistic=np.mean, seed=seed)
    gap, gap_low, gap_high = stats.bootstrap(
        c, bc, statistic=lambda a, b: float(np.mean(a - b)), seed=seed
    )
    sav, sav_low, sav_high = stats.bootstrap(
        t, bt, statistic=lambda a, b: 1.0 - float(a.sum()) / max(float(b.sum()), 1e-12), seed=seed
    )
    refused = ""
    if base_acc < min_baseline_accuracy:
        refused = (
            f"baseline accuracy {base_acc:.3f} is below min_baseline_accuracy="
            f"{min_baseline_accuracy}: the model solves (almost) nothing, so keeping its accuracy "
            "while stopping early is no evidence; no savings-at-equal-accuracy claim"
        )
    elif not base_low > 0.0:
        refused = (
            f"baseline accuracy {base_acc:.3f} has a 95% interval reaching 0 over "
            f"{len(bc)} problems; no savings-at-equal-accuracy claim"
        )
    return Comparison(
        acc, base_acc, base_low, gap, gap_low, gap_high, sav, sav_low, sav_high, refused
    )


def curve_frame(points: Sequence[Outcome], label: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([p.row() for p in points])
    if label:
        frame["policy"] = label
    return frame
