"""Test-case selection strategies over the task's candidate pool: each returns the selected pool
indices in the order they are spent (the fault curves read the first 25/50/75/100 %)."""

from __future__ import annotations

import torch

from . import coverage as cov
from .scores import fvs, kselection, map_changes, selection_scores, topk, vulnerable_set


def deepfeature_scores(task, model, vs_size: int, fvs_data: str) -> dict:
    """FVS of every map of the tested layer, the vulnerable set and each pool input's score
    (`changes`: every pool input's change of every map, which the controls reuse)."""
    layer = task.layer(model)
    pool = task.pool()
    pool_changes = map_changes(model, pool.origin, pool.x, layer)
    if fvs_data == "val":
        clean, mutated = task.mutated_val()
        map_fvs = fvs(map_changes(model, clean, mutated, layer))
    else:
        map_fvs = fvs(pool_changes)
    vs = vulnerable_set(map_fvs, min(vs_size, len(map_fvs)))
    return {
        "layer": layer,
        "fvs": map_fvs,
        "vs": vs,
        "scores": selection_scores(pool_changes, vs),
        "changes": pool_changes,
    }


CONTROLS = ("least_vulnerable", "random_maps", "origin_distance")


def control_scores(task, info: dict, seed: int) -> dict[str, torch.Tensor]:
    """What DeepFeature's score is tested against (issue 26): the same per-input score over the
    `vs_size` LEAST vulnerable maps and over as many random maps (if the vulnerable maps matter,
    both select fewer faults), and a model-free score, the mean squared pixel distance between a
    mutant and its original (if it selects as well, the gain comes from scoring mutants against
    their originals, not from feature maps)."""
    changes, k = info["changes"], len(info["vs"])
    least = torch.sort(info["fvs"], stable=True).indices[:k].tolist()
    g = torch.Generator().manual_seed(73_009 + seed)
    rand = sorted(torch.randperm(changes.shape[1], generator=g)[:k].tolist())
    pool = task.pool()
    pixel = (pool.x - pool.origin).pow(2).flatten(1).mean(1)
    return {
        "least_vulnerable": selection_scores(changes, least),
        "random_maps": selection_scores(changes, rand),
        "origin_distance": pixel,
    }


def select_deepfeature(task, model, budget: int, selection: str, vs_size: int, fvs_data: str):
    info = deepfeature_scores(task, model, vs_size, fvs_data)
    pick = kselection if selection == "kselection" else topk
    return pick(info["scores"], budget), info


def select_random(task, model, budget: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(71_003 + seed)
    return torch.randperm(len(task.pool().x), generator=g)[:budget].tolist()


def _pool_neurons(task, model):
    layers = cov.neuron_layers(model)
    _, outs = cov.neuron_outputs(model, task.pool().x, layers)
    return layers, outs


def _train_ranges(task, model, layers):
    _, train_outs = cov.neuron_outputs(model, task.splits().train.x, layers)
    return cov.neuron_ranges(train_outs)


def select_nc(task, model, budget: int, seed: int, threshold: float, scale: bool = True):
    _, outs = _pool_neurons(task, model)
    return cov.greedy_additional(cov.nc_matrix(outs, threshold, scale), budget, seed)


def select_kmnc(task, model, budget: int, seed: int, k: int):
    layers, outs = _pool_neurons(task, model)
    low, high = _train_ranges(task, model, layers)
    return cov.greedy_additional(cov.kmnc_matrix(outs, low, high, k), budget, seed)


def select_nbc(task, model, budget: int, seed: int):
    layers, outs = _pool_neurons(task, model)
    low, high = _train_ranges(task, model, layers)
    return cov.greedy_additional(cov.nbc_matrix(outs, low, high), budget, seed)


@torch.no_grad()
def select_gini(task, model, budget: int) -> list[int]:
    x = task.pool().x
    model.eval()
    logits = torch.cat([model(x[i : i + 1024]) for i in range(0, len(x), 1024)])
    return torch.sort(cov.gini(logits), descending=True, stable=True).indices[:budget].tolist()


def select_lsa(task, model, budget: int, var_threshold: float) -> list[int]:
    layer = task.layer(model)
    logits_tr, tr = cov.neuron_outputs(model, task.splits().train.x, [layer])
    logits_p, po = cov.neuron_outputs(model, task.pool().x, [layer])
    s = cov.lsa(tr[layer], logits_tr.argmax(1), po[layer], logits_p.argmax(1), var_threshold)
    return torch.sort(s, descending=True, stable=True).indices[:budget].tolist()


def select_baseline(name: str, task, model, budget: int, seed: int, cfg) -> list[int]:
    """A baseline by name with the parameters `cfg` carries (or their defaults)."""
    if name == "random":
        return select_random(task, model, budget, seed)
    if name == "nc":
        threshold = getattr(cfg, "nc_threshold", 0.5)
        return select_nc(task, model, budget, seed, threshold, getattr(cfg, "scale", True))
    if name == "kmnc":
        return select_kmnc(task, model, budget, seed, getattr(cfg, "kmnc_k", 10))
    if name == "nbc":
        return select_nbc(task, model, budget, seed)
    if name == "gini":
        return select_gini(task, model, budget)
    if name == "lsa":
        return select_lsa(task, model, budget, getattr(cfg, "var_threshold", 1e-5))
    raise ValueError(f"unknown baseline {name!r}")
