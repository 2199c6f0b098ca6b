"""DeepFeature's metrics, as in the official code: the feature-map attack score (FAS), the
vulnerability score under benign mutations (FVS), the vulnerable set, the per-input selection
score, k-section selection, and fault detection rate / diversity of a selection."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from celine.vision.featuremaps import feature_map_pgd, forward_with_maps, map_change


@torch.no_grad()
def map_changes(model: nn.Module, x: Tensor, x_mut: Tensor, layer: str, batch: int = 512) -> Tensor:
    """[N, C]: per input and map of `layer`, the spatial mean of (F_c(M(x)) - F_c(x))^2."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        _, a = forward_with_maps(model, x[i : i + batch], [layer], detach=True)
        _, b = forward_with_maps(model, x_mut[i : i + batch], [layer], detach=True)
        out.append(map_change(b[layer], a[layer]))
    return torch.cat(out)


def fvs(changes: Tensor) -> Tensor:
    """Feature map Vulnerability Score of every map: mean over inputs of `map_changes` (equal
    to the official mean over batches when batches are equal in size)."""
    return changes.mean(0)


def vulnerable_set(scores: Tensor, size: int) -> list[int]:
    """The `size` maps with the highest FVS (the official code: last `size` of an argsort)."""
    return torch.sort(scores, stable=True).indices[-size:].tolist()


def selection_scores(changes: Tensor, vs: list[int]) -> Tensor:
    """Per input: the mean over the vulnerable maps of its map change."""
    return changes[:, vs].mean(1)


def kselection(scores: Tensor, budget: int) -> list[int]:
    """k-section selection: rank ascending and pick `budget` ranks evenly spaced over all ranks
    (`linspace(0, N-1, budget)` in the official code). Returned highest score first."""
    order = torch.sort(scores, stable=True).indices
    ranks = np.unique(np.linspace(0, len(scores) - 1, min(budget, len(scores))).round().astype(int))
    return order[torch.as_tensor(ranks)].flip(0).tolist()


def topk(scores: Tensor, budget: int) -> list[int]:
    """The `budget` highest scores, highest first (the official code's commented-out variant)."""
    return torch.sort(scores, descending=True, stable=True).indices[:budget].tolist()


def fault_curve(
    pred: Tensor, true: Tensor, order: list[int], fractions=(0.25, 0.5, 0.75, 1.0)
) -> dict[str, float]:
    """FDR (misclassification rate) and FDD (distinct (predicted, true) pairs among the
    misclassified) of the first 25/50/75/100 % of a selection, plus the area under the
    cumulative FDD curve normalised by its length."""
    idx = torch.as_tensor(order, dtype=torch.long)
    p, t = pred[idx], true[idx]
    wrong = p != t
    out: dict[str, float] = {}
    for f in fractions:
        n = max(1, int(round(f * len(idx))))
        pairs = {(int(a), int(b)) for a, b, w in zip(p[:n], t[:n], wrong[:n], strict=True) if w}
        key = int(round(f * 100))
        out[f"fdr_{key}"] = float(wrong[:n].float().mean())
        out[f"fdd_{key}"] = float(len(pairs))
    seen: set = set()
    cum = []
    for a, b, w in zip(p.tolist(), t.tolist(), wrong.tolist(), strict=True):
        if w:
            seen.add((a, b))
        cum.append(len(seen))
    out["fdd_auc"] = float(np.mean(cum)) if cum else 0.0
    return out


def fault_types(pred: Tensor, true: Tensor) -> set[tuple[int, int]]:
    wrong = pred != true
    return {(int(a), int(b)) for a, b in zip(pred[wrong], true[wrong], strict=True)}


def fas(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    layer: str,
    *,
    eps: float,
    alpha: float,
    steps: int,
    seed: int = 0,
    maps_per_call: int = 8,
) -> Tensor:
    """Feature map Attack Score of every map of `layer`: 100 - 100 * (correct on the map's
    attack) / (correct on clean), over the inputs the model classifies correctly anyway."""
    model.eval()
    with torch.no_grad():
        clean_ok = model(x).argmax(1) == y
    n_clean = int(clean_ok.sum())
    g = torch.Generator().manual_seed(80_021 + seed)
    with torch.no_grad():
        _, ref = forward_with_maps(model, x[:1], [layer], detach=True)
    n_maps = ref[layer].shape[1]
    out = torch.empty(n_maps)
    for s in range(0, n_maps, maps_per_call):
        chans = list(range(s, min(n_maps, s + maps_per_call)))
        adv = feature_map_pgd(
            model, x, layer, chans, eps=eps, alpha=alpha, steps=steps, generator=g
        )  # fmt: skip
        with torch.no_grad():
            pred = model(adv.flatten(0, 1)).argmax(1).view(len(chans), len(x))
        for k, c in enumerate(chans):
            ok = int(((pred[k] == y) & clean_ok).sum())
            out[c] = 100 - 100 * ok / max(1, n_clean)
    return out
