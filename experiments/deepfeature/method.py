"""The methods of the deepfeature task: DeepFeature's test selection (with the baselines measured
on the same pool), each baseline selection on its own, DeepFeature's fuzzer and the
coverage-guided fuzzer."""

from __future__ import annotations

import pandas as pd
import torch

from celine.api import Result, RunContext

from . import selection as sel
from .fuzz import CoverageObjective, deepfeature_attack, run_fuzzer
from .plots import fault_curves, fuzz_curves
from .scores import fas, fault_curve


def _base_metrics(task, model) -> dict[str, float]:
    from celine.vision.train import evaluate

    pool = task.pool()
    pred = task.pool_predictions(model)
    return {
        "model/test_acc": evaluate(model, task.splits().test),
        "pool/fault_rate": float((pred != pool.y).float().mean()),
        "pool/size": float(len(pool.y)),
        "budget": float(task.budget()),
    }


def _cumulative(pred, true, order) -> pd.DataFrame:
    idx = torch.as_tensor(order, dtype=torch.long)
    wrong = (pred[idx] != true[idx]).tolist()
    seen, rows, faults = set(), [], 0
    for n, (w, p, t) in enumerate(zip(wrong, pred[idx].tolist(), true[idx].tolist(), strict=True)):
        faults += w
        if w:
            seen.add((p, t))
        rows.append({"selected": n + 1, "fdr": faults / (n + 1), "fdd": len(seen)})
    return pd.DataFrame(rows)


def _repair(ctx: RunContext, task, model, order, cfg) -> dict[str, float]:
    """Retrain a copy on training set + selected cases; accuracy on the clean test set and on
    the pool inputs that were NOT selected, before and after."""
    from celine.vision.datasets import ImageSet
    from celine.vision.train import evaluate, train_classifier

    pool, train = task.pool(), task.splits().train
    chosen = torch.as_tensor(order, dtype=torch.long)
    rest = torch.ones(len(pool.y), dtype=torch.bool)
    rest[chosen] = False
    held = ImageSet(pool.x[rest], pool.y[rest])
    before = {"test_acc": evaluate(model, task.splits().test), "heldout_pool_acc": evaluate(model, held)}  # fmt: skip
    data = ImageSet(torch.cat([train.x, pool.x[chosen]]), torch.cat([train.y, pool.y[chosen]]))
    repaired = task.model()
    train_classifier(
        repaired, data, None, epochs=cfg.repair_epochs, lr=cfg.repair_lr,
        batch_size=cfg.repair_batch_size, optimizer="sgd", seed=ctx.seed, log=ctx.log,
    )  # fmt: skip
    after = {"test_acc": evaluate(repaired, task.splits().test), "heldout_pool_acc": evaluate(repaired, held)}  # fmt: skip
    out = {f"repair/{k}_before": v for k, v in before.items()}
    out.update({f"repair/{k}_after": v for k, v in after.items()})
    return out


_SELECTION_METRICS = ("fdr", "fdd", "fdd_auc")


def missing_if_vacuous(metrics: dict, pred, true) -> dict[str, str]:
    """A pool with no faults (or only faults) makes every selection score the same: report the
    selection metrics missing with the reason rather than a tie or a "win" (`Result.missing`)."""
    faults, n = int((pred != true).sum()), len(true)
    if 0 < faults < n:
        return {}
    reason = (
        "no faults in the pool (the model is right on every input): every selection scores 0"
        if faults == 0
        else "every pool input is a fault: every selection scores 1"
    )
    for key in _SELECTION_METRICS:
        metrics.pop(key, None)
    return dict.fromkeys(_SELECTION_METRICS, reason)


class _Selection:
    """Select `budget` pool inputs; measure fault detection rate and diversity."""

    strategy = "random"

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def select(self, ctx, task, model, budget) -> list[int]:
        return sel.select_baseline(self.strategy, task, model, budget, ctx.seed, self.cfg)

    def run(self, ctx: RunContext) -> Result:
        task = ctx.task
        model = task.model()
        metrics = _base_metrics(task, model)
        pred, true = task.pool_predictions(model), task.pool().y
        order = self.select(ctx, task, model, task.budget())
        metrics.update(fault_curve(pred, true, order))
        metrics["fdr"] = metrics["fdr_100"]
        metrics["fdd"] = metrics["fdd_100"]
        missing = missing_if_vacuous(metrics, pred, true)
        curve = _cumulative(pred, true, order)
        if self.cfg.repair:
            metrics.update(_repair(ctx, task, model, order, self.cfg))
        return Result(
            metrics=metrics,
            missing=missing,
            tables={"cumulative": curve},
            figures={"fault_curves": fault_curves({self.strategy: curve})},
        )


class RandomSelection(_Selection):
    strategy = "random"


class NCSelection(_Selection):
    strategy = "nc"


class KMNCSelection(_Selection):
    strategy = "kmnc"


class NBCSelection(_Selection):
    strategy = "nbc"


class GiniSelection(_Selection):
    strategy = "gini"


class LSASelection(_Selection):
    strategy = "lsa"


class DeepFeature(_Selection):
    """DeepFeature's selection by the vulnerable maps' change, beside the baselines (same pool,
    same budget), with FVS and FAS of every map of the tested layer."""

    strategy = "deepfeature"

    def run(self, ctx: RunContext) -> Result:
        cfg, task = self.cfg, ctx.task
        model = task.model()
        metrics = _base_metrics(task, model)
        pred, true = task.pool_predictions(model), task.pool().y
        budget = task.budget()
        order, info = sel.select_deepfeature(task, model, budget, cfg.selection, cfg.vs_size, cfg.fvs_data)  # fmt: skip
        ctx.log.info("layer %s: vulnerable set %s (FVS %s)", info["layer"], info["vs"],
                     [round(float(info["fvs"][c]), 4) for c in info["vs"]])  # fmt: skip
        orders = {"deepfeature": order}
        other = "topk" if cfg.selection == "kselection" else "kselection"
        pick = sel.topk if other == "topk" else sel.kselection
        orders[f"deepfeature_{other}"] = pick(info["scores"], budget)
        own = sel.topk if cfg.selection == "topk" else sel.kselection
        for name, scores in sel.control_scores(task, info, ctx.seed).items():
            orders[name] = own(scores, budget)  # the same selection rule as DeepFeature's
        for name in cfg.baselines:
            orders[name] = sel.select_baseline(name, task, model, budget, ctx.seed, cfg)
            ctx.log.info("baseline %s selected %d inputs", name, len(orders[name]))
        rows, curves = [], {}
        for name, o in orders.items():
            m = fault_curve(pred, true, o)
            rows.append({"strategy": name, **m})
            curves[name] = _cumulative(pred, true, o)
            if name == "deepfeature":
                metrics.update(m)
            else:
                metrics.update({f"{name}/{k}": v for k, v in m.items()})
        metrics["fdr"], metrics["fdd"] = metrics["fdr_100"], metrics["fdd_100"]
        for name in (*sel.CONTROLS, *[b for b in cfg.baselines if b == "gini"]):
            # per-run paired differences: their mean and interval over seeds are the paired test
            metrics[f"vs_minus_{name}/fdr"] = metrics["fdr"] - metrics[f"{name}/fdr_100"]
        maps = pd.DataFrame({"map": range(len(info["fvs"])), "fvs": info["fvs"].tolist()})
        maps["in_vs"] = maps["map"].isin(info["vs"])
        if cfg.fas_steps > 0:
            val = task.splits().val
            n = min(cfg.fas_samples, len(val))
            scores = fas(model, val.x[:n], val.y[:n], info["layer"], eps=cfg.fas_eps,
                         alpha=cfg.fas_alpha, steps=cfg.fas_steps, seed=ctx.seed)  # fmt: skip
            maps["fas"] = scores.tolist()
            metrics["fas/vs_mean"] = float(maps.loc[maps.in_vs, "fas"].mean())
            rest = maps.loc[~maps.in_vs, "fas"]
            metrics["fas/others_mean"] = float(rest.mean()) if len(rest) else 0.0
            from scipy.stats import spearmanr

            rho = spearmanr(maps["fvs"], maps["fas"]).statistic
            metrics["fas/fvs_spearman"] = float(rho) if rho == rho else 0.0
        missing = missing_if_vacuous(metrics, pred, true)
        if cfg.repair:
            metrics.update(_repair(ctx, task, model, order, cfg))
        return Result(
            metrics=metrics,
            missing=missing,
            tables={
                "selection": pd.DataFrame(rows),
                "maps": maps,
                "cumulative": curves["deepfeature"],
            },  # fmt: skip
            figures={"fault_curves": fault_curves(curves)},
            notes={"layer": info["layer"], "vulnerable_set": str(info["vs"])},
        )


class _Fuzzer:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def seeds(self, ctx, task):
        train = task.splits().train
        g = torch.Generator().manual_seed(72_007 + ctx.seed)
        idx = torch.randperm(len(train), generator=g)[: self.cfg.seeds]
        return train.x[idx], train.y[idx]

    def attack(self, ctx, task, model):
        raise NotImplementedError

    def run(self, ctx: RunContext) -> Result:
        cfg, task = self.cfg, ctx.task
        model = task.model()
        metrics = _base_metrics(task, model)
        x, y = self.seeds(ctx, task)
        attack, observe, notes = self.attack(ctx, task, model)
        res = run_fuzzer(
            model, x, y, attack, steps_per_round=cfg.steps, budget=cfg.budget,
            budget_unit=cfg.budget_unit, batch=cfg.batch, restarts=cfg.restarts,
            seed=ctx.seed, observe=observe,
        )  # fmt: skip
        metrics.update(res.metrics())
        ctx.log.info(
            "%s: %d cases, %d faults, %d fault types in %.1f s", type(self).__name__,
            res.cases, res.faults, len(res.types), res.seconds,
        )  # fmt: skip
        curve = pd.DataFrame(res.curve, columns=["seconds", "faults", "fault_types"])
        for i, row in enumerate(res.curve):
            ctx.log_metrics({"fuzz/faults_cum": row[1], "fuzz/types_cum": row[2]}, step=i)
        return Result(
            metrics=metrics,
            tables={"fuzz_curve": curve},
            figures={"fuzz_curves": fuzz_curves({type(self).__name__: curve})},
            notes=notes,
        )


class DeepFeatureFuzz(_Fuzzer):
    """DeepFeature's fuzzer: PGD maximising the summed change of the vulnerable maps."""

    def attack(self, ctx, task, model):
        info = sel.deepfeature_scores(task, model, self.cfg.vs_size, self.cfg.fvs_data)
        c = self.cfg
        attack = deepfeature_attack(model, info["layer"], info["vs"], c.eps, c.alpha, c.steps)
        return attack, None, {"layer": info["layer"], "vulnerable_set": str(info["vs"])}


class CoverageFuzz(_Fuzzer):
    """Coverage-guided: the same PGD, maximising the output of the not-yet-covered neurons."""

    def attack(self, ctx, task, model):
        from .coverage import neuron_layers

        c = self.cfg
        obj = CoverageObjective(model, neuron_layers(model), c.nc_threshold, c.eps, c.alpha, c.steps)  # fmt: skip
        return obj.attack, obj.observe, {}
