"""Rating and ranking metrics, and cluster recovery against planted ground truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from .data import Ratings


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(true, float)) ** 2)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(true, float))))


def ranking_at_k(
    score_all: Callable[[np.ndarray], np.ndarray],
    seen: Ratings,
    test: Ratings,
    *,
    k: int,
    relevant: float,
) -> tuple[float, float]:
    """Recall@k and NDCG@k (binary gains) over users with a relevant held-out rating.

    Items the user rated in `seen` (train and validation) are never recommended again."""
    rel = test.rating >= relevant
    users = np.unique(test.user[rel])
    if len(users) == 0:
        return 0.0, 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for chunk in np.array_split(users, max(1, len(users) // 256)):
        scores = np.array(score_all(chunk), dtype=np.float64)
        row = {u: r for r, u in enumerate(chunk)}
        mask = np.isin(seen.user, chunk)
        scores[[row[u] for u in seen.user[mask]], seen.item[mask]] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for r, u in enumerate(chunk):
            wanted = set(test.item[rel & (test.user == u)].tolist())
            hits = np.array([item in wanted for item in top[r]], dtype=float)
            recalls.append(hits.sum() / len(wanted))
            ideal = discounts[: min(len(wanted), k)].sum()
            ndcgs.append(float(hits @ discounts) / ideal)
    return float(np.mean(recalls)), float(np.mean(ndcgs))


def planted_nmi(learned: list[np.ndarray], planted: list[np.ndarray]) -> float:
    """For each planted view, the best NMI over the learned views' hard assignments; then the
    mean over planted views (views are unordered, so each planted view picks its match)."""
    return float(
        np.mean(
            [
                max(normalized_mutual_info_score(truth, labels) for labels in learned)
                for truth in planted
            ]
        )
    )
