"""The ratings task: builds the splits once and turns any scorer into the task's metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .config import MfdmcTaskConfig
from .data import Ratings, Splits, load_ratings, planted, split_leave_out, split_random, to_implicit
from .metrics import mae, planted_nmi, ranking_at_k, rmse


class RatingsTask:
    def __init__(self, cfg: MfdmcTaskConfig, ctx) -> None:
        self.cfg = cfg
        if cfg.dataset == "planted":
            data = planted(
                users=cfg.users,
                items=cfg.items,
                views=cfg.planted_views,
                groups=cfg.planted_groups,
                group_dim=cfg.group_dim,
                density=cfg.density,
                noise=cfg.noise,
                bias_std=cfg.bias_std,
                seed=cfg.data_seed,
                spread=cfg.planted_spread,
            )
        else:
            data = load_ratings(cfg.dataset, cfg.data_root, csv_sep=cfg.csv_sep)
        if cfg.implicit_threshold is not None:
            data = to_implicit(data, cfg.implicit_threshold, cfg.implicit_negatives, cfg.data_seed)
        self.data = data
        self.splits: Splits = (
            split_random(data, cfg.val_fraction, cfg.test_fraction, cfg.data_seed)
            if cfg.split == "random"
            else split_leave_out(data, cfg.leave_out_n, cfg.data_seed)
        )
        s = self.splits
        ctx.log.info(
            "%s: %d users, %d items, %d ratings (train %d, val %d, test %d)",
            cfg.dataset,
            data.n_users,
            data.n_items,
            len(data),
            len(s.train),
            len(s.val),
            len(s.test),
        )

    @property
    def relevant(self) -> float:
        return 1.0 if self.cfg.implicit_threshold is not None else self.cfg.relevant_threshold

    def evaluate(
        self,
        predict: Callable[[Ratings], np.ndarray],
        score_all: Callable[[np.ndarray], np.ndarray],
    ) -> dict[str, float]:
        s = self.splits
        test_pred, val_pred = predict(s.test), predict(s.val)
        seen = _concat(s.train, s.val)
        recall, ndcg = ranking_at_k(
            score_all, seen, s.test, k=self.cfg.ranking_k, relevant=self.relevant
        )
        return {
            "test/rmse": rmse(test_pred, s.test.rating),
            "test/mae": mae(test_pred, s.test.rating),
            "val/rmse": rmse(val_pred, s.val.rating),
            "test/recall_at_k": recall,
            "test/ndcg_at_k": ndcg,
        }

    def cluster_nmi(self, users: list[np.ndarray], items: list[np.ndarray]) -> dict[str, float]:
        """NMI of learned hard clusters against the planted ones (empty for real data)."""
        if not self.data.user_groups:
            return {}
        return {
            "nmi/users": planted_nmi(users, self.data.user_groups),
            "nmi/items": planted_nmi(items, self.data.item_groups),
        }


def _concat(a: Ratings, b: Ratings) -> Ratings:
    return replace(
        a,
        user=np.r_[a.user, b.user],
        item=np.r_[a.item, b.item],
        rating=np.r_[a.rating, b.rating],
        time=None,
    )
