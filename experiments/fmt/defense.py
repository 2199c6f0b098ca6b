"""The pieces of the defences: FMT's per-map detection score, choosing maps to prune, Fine-Pruning's
activation ranking, and fine-tuning on the clean subset (optionally with pruned maps masked)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from celine.vision.featuremaps import MapMask, conv_layers, feature_map_pgd


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int = 2048) -> Tensor:
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def map_attack_predictions(
    model: nn.Module,
    x: Tensor,
    layer: str,
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: str,
    generator: torch.Generator,
    maps_per_call: int = 16,
    map_attack: str = "pgd",
    start: Tensor | None = None,
) -> Tensor:
    """FMT's test of every map of one conv layer: for each map, the model's predictions `[maps,
    len(x)]` on the inputs attacked to maximise that map's change.

    map_attack="fgsm" (fgsm-feature.py): from `start` (one random start shared by every map),
    one signed-gradient step of eps, clipped to [0, 1] only. "pgd": `steps` of alpha from a
    random start per map, projected onto the eps-ball around x."""
    n_maps = conv_layers(model)[layer].out_channels
    fgsm = map_attack == "fgsm"
    preds = []
    for first in range(0, n_maps, maps_per_call):
        chans = list(range(first, min(n_maps, first + maps_per_call)))
        adv = feature_map_pgd(
            model, x, layer, chans, eps=eps, alpha=eps if fgsm else alpha,
            steps=1 if fgsm else steps, random_start=random_start, generator=generator,
            project=not fgsm, start=start if fgsm else None,
        )  # fmt: skip
        preds.append(_predict(model, adv.flatten(0, 1)).view(len(chans), len(x)))
    return torch.cat(preds)


def fmt_scores(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: str = "sign",
    score: str = "accuracy",
    layers: list[str] | None = None,
    maps_per_call: int = 16,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    map_attack: str = "fgsm",
) -> dict[str, Tensor]:
    """FMT's detection score of every map of every conv layer: attack the map (FGSM or PGD on
    the input maximising the map's change from a random start, see `map_attack_predictions`) and
    score the model on the result.

    score="accuracy" (FMP): accuracy on the attacked inputs; a backdoor map, once excited,
    flips predictions to the target, so LOW scores are suspects. score="mode_share": the share
    of the most frequent prediction, negated so that low still means suspect."""
    model.eval()
    layers = layers or list(conv_layers(model))
    g = torch.Generator().manual_seed(40_009 + seed)
    start = None
    if map_attack == "fgsm":  # fgsm-feature.py: x + alpha * sign(U(-alpha, alpha)), drawn once
        if random_start == "none":
            start = x
        else:
            noise = torch.rand(x.shape, generator=g).to(x) * 2 - 1
            amp = alpha if random_start == "sign" else eps
            start = (x + (amp * noise.sign() if random_start == "sign" else amp * noise)).clamp(
                0, 1
            )
    out: dict[str, Tensor] = {}
    for li, name in enumerate(layers):
        pred = map_attack_predictions(
            model, x, name, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
            generator=g, maps_per_call=maps_per_call, map_attack=map_attack, start=start,
        )  # fmt: skip
        if score == "accuracy":
            out[name] = (pred == y).float().mean(1)
        else:
            out[name] = -mode_share(pred, int(y.max()) + 1)
        if progress is not None:
            progress(name, li + 1, len(layers))
    return out


def mode_share(pred: Tensor, n_classes: int) -> Tensor:
    """Per row of predictions `[maps, n]`, the share of its most frequent class."""
    n_classes = max(n_classes, int(pred.max()) + 1)
    counts = torch.stack([torch.bincount(p, minlength=n_classes) for p in pred])
    return counts.max(1).values.float() / pred.shape[1]


def prune_count(n_maps: int, ratio: float | None) -> int:
    """Maps to prune in a layer of `n_maps`: floor(ratio * n), or the paper's n // 64."""
    return n_maps // 64 if ratio is None else int(math.floor(ratio * n_maps))


def lowest_per_layer(scores: Mapping[str, Tensor], ratio: float | None) -> dict[str, list[int]]:
    """Per layer, the `prune_count` maps with the lowest score (fgsm-feature.py's rule); ties
    broken by map index (stable sort)."""
    return {
        name: torch.sort(s, stable=True).indices[: prune_count(len(s), ratio)].tolist()
        for name, s in scores.items()
    }


def kmeans_minority(scores: Mapping[str, Tensor], seed: int = 0) -> dict[str, list[int]]:
    """pgd-feature.py's variant: per layer, 2-means on the scores; prune the smaller cluster if
    its mean score is the lower one (nothing if the layer's scores are all equal)."""
    from sklearn.cluster import KMeans

    plan = {}
    for name, s in scores.items():
        v = s.detach().cpu().numpy().reshape(-1, 1)
        if len(v) < 3 or float(v.max() - v.min()) < 1e-12:
            plan[name] = []
            continue
        labels = KMeans(2, n_init=10, random_state=seed).fit_predict(v)
        sizes = [int((labels == k).sum()) for k in (0, 1)]
        minority = int(sizes[1] < sizes[0])
        means = [float(v[labels == k].mean()) for k in (0, 1)]
        plan[name] = (
            [int(i) for i in (labels == minority).nonzero()[0]]
            if means[minority] < means[1 - minority]
            else []
        )
    return plan


def random_per_layer(
    model: nn.Module, ratio: float | None, seed: int, layers: list[str] | None = None
) -> dict[str, list[int]]:
    g = torch.Generator().manual_seed(50_021 + seed)
    convs = conv_layers(model)
    return {
        name: sorted(torch.randperm(convs[name].out_channels, generator=g)[
            : prune_count(convs[name].out_channels, ratio)
        ].tolist())
        for name in (layers or list(convs))
    }  # fmt: skip


def last_stage(model: nn.Module) -> str:
    """The module whose output is the last conv stage's maps, the ones Fine-Pruning prunes (Liu
    et al. 2018: the last convolutional layer's neurons, which the classifier reads): a ResNet's
    last `layerN` (its output is after the residual add and ReLU, so a pruned channel is gone
    for the classifier; pruning a conv inside the block would leave the identity shortcut's
    copy), VGG's last ReLU, else the last conv (LeNet-5, whose ReLU runs in place on it)."""
    stages = [n for n in ("layer4", "layer3", "layer2", "layer1") if hasattr(model, n)]
    if stages:
        return stages[0]
    convs = list(conv_layers(model))
    body = getattr(model, "body", None)
    if isinstance(body, nn.Sequential) and not any(isinstance(m, nn.Linear) for m in body):
        relus = [i for i, m in enumerate(body) if isinstance(m, nn.ReLU)]
        if relus:
            return f"body.{relus[-1]}"
    return convs[-1]


@torch.no_grad()
def mean_activation(model: nn.Module, x: Tensor, layer: str) -> Tensor:
    """Fine-Pruning's ranking: each map's mean activation (after ReLU) over clean images."""
    from celine.vision.featuremaps import forward_with_maps

    model.eval()
    _, maps = forward_with_maps(model, x, [layer], detach=True)
    return torch.relu(maps[layer]).mean((0, 2, 3)).cpu()


def fine_tune(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
    eta_min: float,
    seed: int,
    device: str = "cpu",
    mask: Mapping[str, list[int]] | None = None,
    log: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Cross-entropy fine-tuning of all parameters (SGD + cosine to eta_min, FMP's recipe);
    with `mask`, those maps stay zero throughout and afterwards (the mask's forward hooks stay
    on the model). Returns the mean loss of each epoch."""
    losses: list[float] = []
    if mask:
        MapMask(model, mask)  # hooks stay registered: the pruned maps never come back
    if epochs == 0:
        return losses
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=eta_min)
    g = torch.Generator().manual_seed(60_013 + seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            if len(idx) < 2 and len(x) >= 2:  # BatchNorm needs two samples in train mode
                continue
            xb, yb = x[idx].to(device), y[idx].to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        losses.append(total / len(x))
        if log is not None:
            log(epoch + 1, losses[-1])
    model.eval()
    return losses
