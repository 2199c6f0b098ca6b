"""Certaindex: how sure a reasoning program already is of its answer (paper §3.1).

Entropy form: cluster the n answers, H = -sum p_i log p_i, certaindex = (log n - H) / log n,
1 when all agree and 0 when all differ. Reward form: mean (MCTS) or max (Rebase) of a reward in
[0, 1] over terminal paths. A program passes when every configured threshold passes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence


def _clusters(answers: Sequence[Hashable | None]) -> list[int]:
    """Cluster sizes by exact answer; each missing answer (None) is its own cluster, so a
    program that cannot parse its answers is never certain."""
    counts = Counter(a for a in answers if a is not None)
    return list(counts.values()) + [1] * sum(a is None for a in answers)


def entropy_certaindex(answers: Sequence[Hashable | None]) -> float:
    n = len(answers)
    if n < 2:
        raise ValueError(f"entropy certaindex needs at least 2 answers, got {n}")
    h = -sum((c / n) * math.log(c / n) for c in _clusters(answers))
    return max(0.0, min(1.0, (math.log(n) - h) / math.log(n)))


def reward_certaindex(rewards: Sequence[float], aggregate: str = "mean") -> float:
    if not rewards:
        raise ValueError("reward certaindex needs at least one reward")
    bad = [r for r in rewards if not 0.0 <= r <= 1.0]
    if bad:
        raise ValueError(f"rewards must lie in [0, 1], got {bad[:3]}")
    if aggregate == "mean":
        return sum(rewards) / len(rewards)
    if aggregate == "max":
        return max(rewards)
    raise ValueError(f"aggregate={aggregate!r}: allowed mean, max")


def passes(
    answers: Sequence[Hashable | None],
    rewards: Sequence[float] | None = None,
    *,
    entropy_threshold: float | None = None,
    reward_threshold: float | None = None,
    reward_aggregate: str = "mean",
) -> bool:
    """True when every configured certaindex reaches its threshold (paper: combined
    indicators must all pass, e.g. MCTS-GSM8K uses both)."""
    if entropy_threshold is None and reward_threshold is None:
        raise ValueError("configure at least one threshold")
    if entropy_threshold is not None and entropy_certaindex(answers) < entropy_threshold:
        return False
    if reward_threshold is not None:
        if rewards is None:
            raise ValueError("a reward threshold needs rewards")
        if reward_certaindex(rewards, reward_aggregate) < reward_threshold:
            return False
    return True


def majority_vote(answers: Sequence[Hashable | None]) -> Hashable | None:
    """The most frequent non-missing answer; ties go to the one seen first (SC's aggregate)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)
