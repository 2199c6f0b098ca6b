"""MFDMC and its baselines as Celine methods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from celine.api import Result, RunContext

from . import plots
from .config import (
    BiasedMfConfig,
    GlobalMeanConfig,
    LatentFactorsConfig,
    MfdmcConfig,
    SurpriseSvdConfig,
)
from .models import MFDMC as MFDMCModel
from .models import BiasedMF as BiasedMFModel
from .task import RatingsTask
from .training import Fit, fit, predict


def _scorer(model, device: str):
    @torch.no_grad()
    def score_all(users: np.ndarray) -> np.ndarray:
        model.eval()
        return model.score_all(torch.as_tensor(users, device=device)).cpu().numpy()

    return score_all


def _fit_summary(run) -> dict[str, float]:
    history = run.history
    return {
        "epochs": len(history),
        "best_epoch": run.best_epoch,
        "time/epoch_s": sum(r["time/epoch_s"] for r in history) / len(history),
    }


class MFDMC:
    def __init__(self, cfg: MfdmcConfig) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        cfg, task = self.cfg, ctx.task
        assert isinstance(task, RatingsTask)
        latent: LatentFactorsConfig = ctx.build_model()
        if latent.dim % cfg.views:
            from celine.api import ConfigError

            raise ConfigError("model.dim", latent.dim, f"a multiple of method.views={cfg.views}")
        torch.manual_seed(ctx.seed)
        s, device = task.splits, ctx.hardware.device
        model = MFDMCModel(
            task.data.n_users,
            task.data.n_items,
            latent.dim,
            latent.init_std,
            float(s.train.rating.mean()),
            views=cfg.views,
            clusters=cfg.clusters,
            entropy_weight=cfg.entropy_weight,
            separation_weight=cfg.separation_weight,
            assignment=cfg.assignment,
        )
        sizes: list[dict] = []

        def before_epoch(epoch: int) -> None:
            frac = epoch / max(1, cfg.epochs - 1)
            model.set_tau(cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** frac)

        def after_epoch(epoch: int, row: dict) -> None:
            done = epoch + 1
            if done >= cfg.discard_after and done % cfg.discard_every == 0:
                for side in (model.users, model.items):
                    side.discard(cfg.min_usage, cfg.max_cosine, cfg.min_clusters)
            users_alive, items_alive = model.alive()
            row.update({"clusters/users_alive": users_alive, "clusters/items_alive": items_alive})
            ctx.log_metrics(row | {}, step=done)
            for name, side in (("users", model.users), ("items", model.items)):
                counts = side.weights().argmax(-1)  # (entities, views)
                for v in range(counts.shape[1]):
                    hist = torch.bincount(counts[:, v], minlength=cfg.clusters)
                    sizes.extend(
                        {"epoch": done, "side": name, "view": v, "cluster": k, "size": int(n)}
                        for k, n in enumerate(hist.tolist())
                    )

        run = fit(
            model,
            s.train,
            s.val,
            cfg,
            device=device,
            seed=ctx.seed,
            before_epoch=before_epoch,
            after_epoch=after_epoch,
            log=ctx.log,
        )
        before_epoch(run.best_epoch - 1)  # the restored weights go with that epoch's temperature
        metrics = task.evaluate(lambda d: predict(model, d, device), _scorer(model, device))
        users_alive, items_alive = model.alive()
        metrics |= task.cluster_nmi(model.users.assignments(), model.items.assignments())
        metrics |= {"clusters/alive": users_alive + items_alive} | _fit_summary(run)

        membership = _membership_table(model)
        history = pd.DataFrame(run.history)
        ctx.log.info(
            "MFDMC: test rmse %.4f, live clusters users %d items %d",
            metrics["test/rmse"],
            users_alive,
            items_alive,
        )
        return Result(
            metrics=metrics,
            tables={
                "history": history,
                "cluster_sizes": pd.DataFrame(sizes),
                "memberships": membership,
            },
            figures={
                "clusters_alive": plots.clusters_alive(history),
                "cluster_embedding": plots.cluster_embedding(model),
            },
        )


def _membership_table(model: MFDMCModel) -> pd.DataFrame:
    """Each entity's cluster weights per view: the interpretability output."""
    frames = []
    for name, side in (("user", model.users), ("item", model.items)):
        w = side.weights().detach().cpu().numpy()  # (n, views, clusters)
        n, views, k = w.shape
        frame = pd.DataFrame(w.reshape(n * views, k), columns=[f"c{j}" for j in range(k)])
        frame.insert(0, "view", np.tile(np.arange(views), n))
        frame.insert(0, "entity", np.repeat(np.arange(n), views))
        frame.insert(0, "side", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


class BiasedMF:
    def __init__(self, cfg: BiasedMfConfig) -> None:
        self.cfg = cfg

    def train(self, ctx: RunContext) -> tuple[BiasedMFModel, Fit]:
        task: RatingsTask = ctx.task
        latent: LatentFactorsConfig = ctx.build_model()
        torch.manual_seed(ctx.seed)
        s = task.splits
        model = BiasedMFModel(
            task.data.n_users,
            task.data.n_items,
            latent.dim,
            latent.init_std,
            float(s.train.rating.mean()),
        )
        run = fit(
            model,
            s.train,
            s.val,
            self.cfg,
            device=ctx.hardware.device,
            seed=ctx.seed,
            optimizer=self.cfg.optimizer,
            after_epoch=lambda e, row: ctx.log_metrics(row, step=e + 1),
            log=ctx.log,
        )
        return model, run

    def run(self, ctx: RunContext) -> Result:
        model, run = self.train(ctx)
        device = ctx.hardware.device
        metrics = ctx.task.evaluate(lambda d: predict(model, d, device), _scorer(model, device))
        metrics |= _fit_summary(run)
        return Result(metrics=metrics, tables={"history": pd.DataFrame(run.history)})


class TwoStage(BiasedMF):
    """The two-stage pipeline MFDMC replaces: factorise first, then cluster the factors into
    as many views as MFDMC has (`additive_kmeans`), so each planted view can be matched by its
    own partition, as MFDMC's are; its ratings are biased MF's."""

    def run(self, ctx: RunContext) -> Result:
        model, run = self.train(ctx)
        device = ctx.hardware.device
        metrics = ctx.task.evaluate(lambda d: predict(model, d, device), _scorer(model, device))
        labels = [
            additive_kmeans(
                factors.detach().cpu().numpy(),
                views=self.cfg.views,
                clusters=self.cfg.clusters,
                seed=ctx.seed,
            )
            for factors in (model.P, model.Q)
        ]
        metrics |= ctx.task.cluster_nmi(*labels)
        metrics |= _fit_summary(run)
        return Result(metrics=metrics, tables={"history": pd.DataFrame(run.history)})


class GlobalMean:
    """Predict the training mean for every rating: the floor every model must clear."""

    def __init__(self, cfg: GlobalMeanConfig) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        task: RatingsTask = ctx.task
        mean = float(task.splits.train.rating.mean())
        n_items = task.data.n_items
        metrics = task.evaluate(
            lambda d: np.full(len(d), mean), lambda users: np.full((len(users), n_items), mean)
        )
        return Result(metrics=metrics)


class SurpriseSVD:
    """scikit-surprise's SVD (biased Funk MF with SGD), at the same latent size."""

    def __init__(self, cfg: SurpriseSvdConfig) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        from surprise import SVD, Dataset, Reader

        task: RatingsTask = ctx.task
        latent: LatentFactorsConfig = ctx.build_model()
        train = task.splits.train
        lo, hi = train.scale
        frame = pd.DataFrame({"u": train.user, "i": train.item, "r": train.rating})
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(lo, hi))).build_full_trainset()
        algo = SVD(
            n_factors=latent.dim,
            n_epochs=self.cfg.n_epochs,
            lr_all=self.cfg.lr_all,
            reg_all=self.cfg.reg_all,
            init_std_dev=latent.init_std,
            random_state=ctx.seed,
        )
        algo.fit(trainset)
        # surprise's dense tables, re-indexed to ours (unknown users/items get zero factors)
        P = np.zeros((task.data.n_users, latent.dim))
        Q = np.zeros((task.data.n_items, latent.dim))
        bu, bi = np.zeros(task.data.n_users), np.zeros(task.data.n_items)
        for inner in trainset.all_users():
            raw = trainset.to_raw_uid(inner)
            P[raw], bu[raw] = algo.pu[inner], algo.bu[inner]
        for inner in trainset.all_items():
            raw = trainset.to_raw_iid(inner)
            Q[raw], bi[raw] = algo.qi[inner], algo.bi[inner]
        mu = trainset.global_mean

        def predict_(d):
            return np.clip(
                mu + bu[d.user] + bi[d.item] + np.einsum("nd,nd->n", P[d.user], Q[d.item]), lo, hi
            )

        metrics = task.evaluate(
            predict_, lambda users: mu + bu[users, None] + bi[None] + P[users] @ Q.T
        )
        return Result(metrics=metrics)


def additive_kmeans(
    x: np.ndarray, *, views: int, clusters: int, seed: int, restarts: int = 50, rounds: int = 20
) -> list[np.ndarray]:
    """Multi-view k-means by backfitting: model each row as a sum of one centroid per view,
    x ~ sum_v C_v[z_v], and alternate Lloyd steps per view on the residual the other views
    leave. Backfitting has poor local minima, so it starts from a joint k-means
    (scikit-learn) with clusters**views centres, one per combination of roles; those few
    centres are split into views by backfitting from `restarts` random starts, the lowest
    error kept, and that split refined on all rows. One view is plain k-means. Returns one
    label array per view, scored like MFDMC's (each planted view picks its best match)."""
    from sklearn.cluster import KMeans

    if views == 1:
        return [KMeans(clusters, n_init=10, random_state=seed).fit_predict(x)]
    joint = KMeans(min(clusters**views, len(x)), n_init=4, random_state=seed).fit(x)
    counts = np.bincount(joint.labels_, minlength=joint.n_clusters).astype(float)
    rng = np.random.default_rng(seed)
    best, best_err = None, np.inf
    for _ in range(restarts):
        start = [rng.integers(clusters, size=joint.n_clusters) for _ in range(views)]
        labels, err = _backfit(joint.cluster_centers_, start, clusters, rounds, counts)
        if err < best_err:
            best, best_err = labels, err
    labels, _ = _backfit(x, [lab[joint.labels_] for lab in best], clusters, rounds, None)
    return labels


def _backfit(x, labels, clusters, rounds, weight):
    """Weighted Lloyd steps per view on the residual of the other views; (labels, error)."""
    w = np.ones(len(x)) if weight is None else weight
    labels = [lab.copy() for lab in labels]
    views = len(labels)
    centres = [_means(x / views, lab, clusters, w) for lab in labels]
    for _ in range(rounds):
        for v in range(views):
            residual = x - sum(centres[o][labels[o]] for o in range(views) if o != v)
            centres[v] = _means(residual, labels[v], clusters, w)
            dist = ((residual[:, None, :] - centres[v][None]) ** 2).sum(-1)
            labels[v] = dist.argmin(1)
            centres[v] = _means(residual, labels[v], clusters, w)
    fit = sum(centres[v][labels[v]] for v in range(views))
    return labels, float((w[:, None] * (x - fit) ** 2).sum())


def _means(x: np.ndarray, labels: np.ndarray, k: int, weight: np.ndarray) -> np.ndarray:
    """Weighted per-label means; an empty label restarts at the largest row."""
    means = np.zeros((k, x.shape[1]))
    for j in range(k):
        rows = labels == j
        if rows.any():
            means[j] = np.average(x[rows], axis=0, weights=weight[rows])
        else:
            means[j] = x[np.argmax((x**2).sum(1))]
    return means
