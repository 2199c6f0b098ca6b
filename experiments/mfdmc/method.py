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
from .training import fit, predict


def _scorer(model, device: str):
    @torch.no_grad()
    def score_all(users: np.ndarray) -> np.ndarray:
        model.eval()
        return model.score_all(torch.as_tensor(users, device=device)).cpu().numpy()

    return score_all


def _fit_summary(history: list[dict]) -> dict[str, float]:
    return {
        "epochs": len(history),
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
        metrics = task.evaluate(lambda d: predict(model, d, device), _scorer(model, device))
        users_alive, items_alive = model.alive()
        metrics |= task.cluster_nmi(model.users.assignments(), model.items.assignments())
        metrics |= {"clusters/alive": users_alive + items_alive} | _fit_summary(run.history)

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

    def train(self, ctx: RunContext) -> tuple[BiasedMFModel, list[dict]]:
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
        return model, run.history

    def run(self, ctx: RunContext) -> Result:
        model, history = self.train(ctx)
        device = ctx.hardware.device
        metrics = ctx.task.evaluate(lambda d: predict(model, d, device), _scorer(model, device))
        metrics |= _fit_summary(history)
        return Result(metrics=metrics, tables={"history": pd.DataFrame(history)})


class TwoStage(BiasedMF):
    """The two-stage pipeline MFDMC replaces: factorise first, then cluster the factors."""

    def run(self, ctx: RunContext) -> Result:
        from sklearn.cluster import KMeans

        model, history = self.train(ctx)
        device = ctx.hardware.device
        metrics = ctx.task.evaluate(lambda d: predict(model, d, device), _scorer(model, device))
        labels = []
        for factors in (model.P, model.Q):
            km = KMeans(self.cfg.clusters, n_init=10, random_state=ctx.seed)
            labels.append([km.fit_predict(factors.detach().cpu().numpy())])
        metrics |= ctx.task.cluster_nmi(*labels)
        metrics |= _fit_summary(history)
        return Result(metrics=metrics, tables={"history": pd.DataFrame(history)})


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
