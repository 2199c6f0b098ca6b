"""The benchmark's parts: the generator's clustered -> continuous knob, the multi-view two-stage
clustering, and early stopping that restores the best epoch without reviving clusters."""

import numpy as np
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from celine.api import ConfigError
from celine.experiments.mfdmc import data as D
from celine.experiments.mfdmc.config import BiasedMfConfig, MfdmcTaskConfig
from celine.experiments.mfdmc.method import additive_kmeans
from celine.experiments.mfdmc.models import MFDMC, BiasedMF
from celine.experiments.mfdmc.training import fit

KW = dict(users=200, items=150, views=2, groups=4, group_dim=4, density=0.3, noise=0.0,
          bias_std=0.0, seed=3)  # fmt: skip


def _group_share(data: D.Ratings) -> float:
    """Share of the rating variance explained by the (user group, item group) cells of view 0
    and 1 together: near 1 when factors are the groups' centroids, near 0 when continuous."""
    cell = (data.user_groups[0][data.user] * 4 + data.item_groups[0][data.item]) * 16 + (
        data.user_groups[1][data.user] * 4 + data.item_groups[1][data.item]
    )
    r = data.rating.astype(float)
    means = np.bincount(cell, r, 256) / np.maximum(np.bincount(cell, minlength=256), 1)
    return 1 - np.var(r - means[cell]) / np.var(r)


def test_spread_zero_is_the_clustered_generator_and_one_removes_the_group_signal():
    clustered = D.planted(**KW)
    assert (D.planted(**KW, spread=0.0).rating == clustered.rating).all()
    shares = [_group_share(D.planted(**KW, spread=s)) for s in (0.0, 0.5, 1.0)]
    assert shares[0] > 0.85 and shares[2] < 0.3, shares
    assert shares[0] > shares[1] > shares[2]
    # same groups, cells and rating variance scale at every spread
    continuous = D.planted(**KW, spread=1.0)
    assert (continuous.user == clustered.user).all()
    assert (continuous.user_groups[1] == clustered.user_groups[1]).all()
    assert 0.5 < continuous.rating.std() / clustered.rating.std() < 2.0


def test_spread_outside_zero_one_is_refused():
    with pytest.raises(ConfigError, match="task.planted_spread"):
        MfdmcTaskConfig(planted_spread=1.5)


def test_additive_kmeans_recovers_two_planted_views_better_than_one_partition():
    """Rows that are sums of two independent roles' centres: the two per-view partitions match
    the roles (mean NMI over 4 draws), where one partition cannot match both."""
    multi, single = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        a, b = rng.integers(4, size=400), rng.integers(4, size=400)
        ca, cb = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
        x = ca[a] + cb[b] + 0.05 * rng.standard_normal((400, 6))
        views = additive_kmeans(x, views=2, clusters=4, seed=0)
        multi += [max(normalized_mutual_info_score(t, v) for v in views) for t in (a, b)]
        (one,) = additive_kmeans(x, views=1, clusters=4, seed=0)
        single += [normalized_mutual_info_score(t, one) for t in (a, b)]
    assert np.mean(multi) > 0.8, multi
    assert np.mean(multi) > np.mean(single) + 0.2, (multi, single)


def _ratings(seed: int) -> tuple[D.Ratings, D.Ratings]:
    data = D.planted(**(KW | {"noise": 0.5, "seed": seed}))
    s = D.split_random(data, 0.2, 0.0, seed)
    return s.train, s.val


def test_early_stopping_restores_the_best_epoch():
    train, val = _ratings(0)
    torch.manual_seed(0)
    model = BiasedMF(train.n_users, train.n_items, 32, 0.1, float(train.rating.mean()))
    cfg = BiasedMfConfig(epochs=40, reg=0.0, lr=0.03, patience=5)  # overfits: val rises late
    run = fit(model, train, val, cfg, device="cpu", seed=0)
    vals = [r["val/rmse"] for r in run.history]
    assert run.best_epoch < run.stopped_epoch
    from celine.experiments.mfdmc.metrics import rmse
    from celine.experiments.mfdmc.training import predict

    assert rmse(predict(model, val, "cpu"), val.rating) == pytest.approx(min(vals), abs=1e-5)


def test_restoring_never_brings_a_discarded_cluster_back():
    train, val = _ratings(1)
    torch.manual_seed(0)
    model = MFDMC(train.n_users, train.n_items, 8, 0.1, float(train.rating.mean()), views=2,
                  clusters=6, entropy_weight=0.0, separation_weight=0.0)  # fmt: skip
    masks = []

    def after_epoch(epoch, row):
        if epoch == 3:  # discard late, after the best epoch has likely passed
            model.users.alive[0, :3] = False
        masks.append(model.users.alive.clone())

    cfg = BiasedMfConfig(epochs=12, patience=3, lr=0.05)
    fit(model, train, val, cfg, device="cpu", seed=0, after_epoch=after_epoch)
    assert torch.equal(model.users.alive, masks[-1])
    assert (model.users.weights()[:, 0, :3] == 0).all()
