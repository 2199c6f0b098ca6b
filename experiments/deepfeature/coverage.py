"""Neuron-level test adequacy, the baselines DeepFeature is compared with.

A *neuron* is a map of a conv layer reduced to its spatial mean, or a unit of a hidden linear
layer (the classifier's output layer excluded), as in DeepXplore/DeepGauge for CNNs.

- NC (DeepXplore): a neuron is covered by an input when its output, min-max scaled over the
  layer's neurons for that input (scale=True), exceeds `threshold`.
- KMNC (DeepGauge): each neuron's range [low, high] on the training data is cut into k sections;
  a section is covered when an input's output falls in it.
- NBC (DeepGauge): the corner regions (> high, < low) of each neuron, 2 per neuron.
- Coverage of a set = covered items / all items. Coverage-guided selection is the greedy
  "additional" strategy (pick the input adding most uncovered items; once nothing adds coverage,
  the rest at random, seeded).
- DeepGini: 1 - sum_c p_c^2, highest first. LSA: -log KDE density of the input's activation
  trace under the training traces of its predicted class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from celine.vision.featuremaps import map_means


def neuron_layers(model: nn.Module) -> list[str]:
    """Conv layers and hidden linear layers (not the last linear: the logits)."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return [n for n in names if not linears or n != linears[-1]]


def neuron_outputs(
    model: nn.Module, x: Tensor, layers: list[str]
) -> tuple[Tensor, dict[str, Tensor]]:
    """(logits, {layer: [N, neurons]})."""
    model.eval()
    return map_means(model, x, layers)


def nc_matrix(outputs: dict[str, Tensor], threshold: float, scale: bool = True) -> Tensor:
    """[N, neurons] bool: neuron covered by input."""
    cols = []
    for out in outputs.values():
        if scale:
            lo = out.min(1, keepdim=True).values
            hi = out.max(1, keepdim=True).values
            out = (out - lo) / (hi - lo).clamp_min(1e-12)
        cols.append(out > threshold)
    return torch.cat(cols, 1)


def neuron_ranges(outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Per neuron (low, high) over the given (training) outputs."""
    full = torch.cat(list(outputs.values()), 1)
    return full.min(0).values, full.max(0).values


def kmnc_matrix(outputs: dict[str, Tensor], low: Tensor, high: Tensor, k: int) -> Tensor:
    """[N, neurons * k] bool: section j of neuron i covered (inputs outside [low, high] cover
    no section; a value equal to high falls in the last section)."""
    v = torch.cat(list(outputs.values()), 1)
    span = (high - low).clamp_min(1e-12)
    inside = (v >= low) & (v <= high) & (high > low)
    sec = ((v - low) / span * k).floor().clamp(0, k - 1).long()
    n, m = v.shape
    out = torch.zeros(n, m, k, dtype=torch.bool)
    out.scatter_(2, sec.unsqueeze(2), inside.unsqueeze(2))
    return out.reshape(n, m * k)


def nbc_matrix(outputs: dict[str, Tensor], low: Tensor, high: Tensor) -> Tensor:
    """[N, neurons * 2] bool: (upper corner v > high, lower corner v < low) per neuron."""
    v = torch.cat(list(outputs.values()), 1)
    return torch.stack((v > high, v < low), 2).reshape(len(v), -1)


def coverage(matrix: Tensor) -> float:
    return float(matrix.any(0).float().mean()) if matrix.shape[1] else 0.0


def greedy_additional(matrix: Tensor, budget: int, seed: int) -> list[int]:
    """Greedy coverage-maximising order of `budget` inputs: each step the input adding most
    uncovered items (lowest index on ties); when none adds any, the rest in random order."""
    n = len(matrix)
    budget = min(budget, n)
    covered = torch.zeros(matrix.shape[1], dtype=torch.bool)
    left = torch.ones(n, dtype=torch.bool)
    m = matrix.to(torch.int32)
    chosen: list[int] = []
    while len(chosen) < budget:
        gains = (m[:, ~covered]).sum(1)
        gains[~left] = -1
        best = int(gains.argmax())
        if gains[best] <= 0:
            break
        chosen.append(best)
        left[best] = False
        covered |= matrix[best]
    if len(chosen) < budget:
        rest = torch.nonzero(left).flatten()
        g = torch.Generator().manual_seed(70_001 + seed)
        rest = rest[torch.randperm(len(rest), generator=g)]
        chosen += rest[: budget - len(chosen)].tolist()
    return chosen


def gini(logits: Tensor) -> Tensor:
    p = torch.softmax(logits, 1)
    return 1 - (p * p).sum(1)


def lsa(
    train_at: Tensor,
    train_pred: Tensor,
    test_at: Tensor,
    test_pred: Tensor,
    var_threshold: float = 1e-5,
) -> Tensor:
    """Likelihood-based surprise adequacy (Kim et al. 2019): -log of the Gaussian KDE density of
    each test trace under the training traces of the class it is predicted as. Dimensions whose
    training variance is below `var_threshold` are dropped (as the paper's code does)."""
    from scipy.stats import gaussian_kde

    a, b = train_at.double().numpy(), test_at.double().numpy()
    out = np.zeros(len(b))
    for c in np.unique(test_pred.numpy()):
        rows = train_at[train_pred == int(c)].double().numpy()
        idx = np.nonzero(test_pred.numpy() == c)[0]
        keep = rows.var(0) > var_threshold if len(rows) > 1 else np.zeros(a.shape[1], bool)
        if len(rows) <= int(keep.sum()) + 1 or not keep.any():
            out[idx] = np.inf  # too few training traces of this class: maximally surprising
            continue
        try:
            kde = gaussian_kde(rows[:, keep].T)
            out[idx] = -kde.logpdf(b[idx][:, keep].T)
        except np.linalg.LinAlgError:
            out[idx] = np.inf
    out = np.nan_to_num(out, posinf=np.finfo(np.float64).max / 2)
    return torch.from_numpy(out)
