"""Learning-to-rank pieces of vllm-ltr: the bucketed label, ListMLE, Kendall's tau, and the
"approx-SJF" perturbation used to make predictors of controlled quality."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import torch


def rank_label(lengths, max_len: int, group: int):
    """vllm-ltr's training label: max_len//g - min(len, max_len)//g. Higher = shorter output;
    lengths in one bucket of g tokens tie (ties are broken at random by ListMLE)."""
    lengths = np.asarray(lengths)
    return max_len // group - np.minimum(lengths, max_len) // group


def length_class(lengths, max_len: int, group: int):
    """Class of the bucket classifier: min(len, max_len - 1)//g, in 0..ceil(max_len/g)-1."""
    return np.minimum(np.asarray(lengths), max_len - 1) // group


def num_classes(max_len: int, group: int) -> int:
    return math.ceil(max_len / group)


def list_mle(scores: torch.Tensor, labels: torch.Tensor, generator=None) -> torch.Tensor:
    """ListMLE (allRank's): the negative log Plackett-Luce likelihood of the order of `labels`
    (descending: higher label = ranked first) under `scores`, for one list or a batch of lists
    ([n] or [b, n]). Ties in the labels are broken by a random shuffle before sorting."""
    squeeze = scores.dim() == 1
    if squeeze:
        scores, labels = scores[None], labels[None]
    n = scores.shape[-1]
    perm = torch.stack([torch.randperm(n, generator=generator) for _ in range(scores.shape[0])]).to(
        scores.device
    )
    s = scores.gather(-1, perm)
    y = labels.gather(-1, perm).float()
    order = torch.sort(y, dim=-1, descending=True, stable=True).indices
    s = s.gather(-1, order)
    # log sum_{k >= i} exp(s_k): reverse cumulative logsumexp
    tail = torch.logcumsumexp(s.flip(-1), dim=-1).flip(-1)
    loss = (tail - s).sum(-1)
    return loss[0] if squeeze else loss.mean()


def plackett_luce_nll(scores, order) -> float:
    """-log P(order | scores) under Plackett-Luce, written out term by term (reference)."""
    s = [float(scores[i]) for i in order]
    total = 0.0
    for i in range(len(s)):
        total += math.log(sum(math.exp(x) for x in s[i:])) - s[i]
    return total


def brute_force_pl_probabilities(scores) -> dict[tuple[int, ...], float]:
    """P(order) for every permutation, as products of PL choice probabilities (n <= 6)."""
    n = len(scores)
    out = {}
    for perm in permutations(range(n)):
        p = 1.0
        left = list(perm)
        for i in perm:
            z = sum(math.exp(float(scores[j])) for j in left)
            p *= math.exp(float(scores[i])) / z
            left.remove(i)
        out[perm] = p
    return out


def kendall_tau(x, y) -> float:
    """Kendall's tau-b (scipy's default variant, the paper's metric), O(n^2) over pairs,
    written out so the tie handling is explicit; for large n use `kendall_tau_fast`."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 2:
        return float("nan")
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(n, 1)
    dx, dy = dx[iu], dy[iu]
    concordant_minus_discordant = float((dx * dy).sum())
    n0 = len(dx)
    ties_x = float((dx == 0).sum())
    ties_y = float((dy == 0).sum())
    denom = math.sqrt((n0 - ties_x) * (n0 - ties_y))
    return concordant_minus_discordant / denom if denom > 0 else float("nan")


def kendall_tau_fast(x, y) -> float:
    """scipy's tau-b; a constant prediction (no order at all, tau undefined) counts as 0."""
    from scipy.stats import kendalltau

    tau = float(kendalltau(x, y).statistic)
    return 0.0 if tau != tau else tau


def approx_sjf_scores(lengths, fraction: float, seed: int = 0, where: str = "uniform"):
    """vllm-ltr's approx-SJF: start from the oracle lengths, pick `fraction` of the requests
    (uniformly, or the head/tail of the sorted order), and shuffle their estimates among
    themselves. fraction 0 -> tau 1; fraction 1 -> tau ~ 0."""
    lengths = np.asarray(lengths, float)
    n = len(lengths)
    rng = np.random.default_rng(seed)
    k = int(round(fraction * n))
    if where == "uniform":
        chosen = rng.choice(n, size=k, replace=False)
    elif where in ("head", "tail"):
        order = np.argsort(lengths, kind="stable")
        chosen = order[:k] if where == "head" else order[n - k :]
    else:
        raise ValueError(f"where={where!r}: expected uniform, head or tail")
    est = lengths.copy()
    est[chosen] = lengths[rng.permutation(chosen)]
    return est
