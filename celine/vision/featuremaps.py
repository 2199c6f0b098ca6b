"""Feature maps of a CNN: capture them with forward hooks, attack one map, mask or prune maps.

Shared by the DeepFeature room (feature-map testing) and the FMT room (backdoor map pruning).
A *map* is one output channel of a layer (a conv layer, or any module whose output is
`[N, C, H, W]`); a layer is named by its `named_modules()` name. Where an in-place activation
follows the layer (the zoo's LeNet-5 uses `ReLU(inplace=True)`), the recorded tensor is rewritten
by it, so the map is the post-activation map (DeepFeature's "conv2 + ReLU" for LeNet-5).

- `conv_layers(model)`, `FeatureMaps` (context manager recording layer outputs), `forward_with_maps`.
- `map_change(a, b)`: per-sample, per-channel mean squared change of maps (over spatial positions).
- `input_pgd(...)`: signed-gradient ascent of any loss of the input, in an L-inf ball, in [0, 1].
- `feature_map_pgd(...)`: PGD on the input maximising the change of ONE map (or the summed change
  of a set of maps), in the L-inf ball of radius eps around the input, inside [0, 1]. Several
  maps are attacked in one batched forward by replicating the inputs (`channels=[...]`): each
  replica's loss depends only on its own inputs, so the gradients are those of separate attacks.
- `MapMask` (a forward hook that multiplies chosen channels by 0) and `prune_maps` (zero the conv
  weight rows, conv bias and the following BatchNorm's gamma, as the FMP code does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "FeatureMaps",
    "MapMask",
    "conv_layers",
    "feature_map_pgd",
    "forward_with_maps",
    "following_batchnorm",
    "input_pgd",
    "layer_channels",
    "map_change",
    "map_means",
    "prune_maps",
    "resolve_layer",
]


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Every `nn.Conv2d` of the model by its `named_modules()` name, in definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def resolve_layer(model: nn.Module, layer: str | int | None) -> str:
    """A layer name from a name, a conv index (negative counts from the end) or None (last conv)."""
    convs = list(conv_layers(model))
    modules = dict(model.named_modules())
    if layer is None:
        layer = -1
    if isinstance(layer, int):
        if not convs or not -len(convs) <= layer < len(convs):
            raise KeyError(f"conv layer index {layer}: the model has {len(convs)} conv layers")
        return convs[layer]
    if layer not in modules or layer == "":
        raise KeyError(f"no module named '{layer}'; conv layers: {', '.join(convs)}")
    return layer


def layer_channels(model: nn.Module, layer: str) -> int:
    module = dict(model.named_modules())[layer]
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.BatchNorm2d):
        return module.num_features
    raise ValueError(f"cannot tell the channel count of '{layer}' ({type(module).__name__})")


class FeatureMaps:
    """Record the outputs of named layers during forward passes.

    with FeatureMaps(model, ["conv1", "conv2"]) as fm:
        logits = model(x)
    fm["conv2"]  # Tensor[N, C, H, W] of the last forward (kept in the graph unless detach=True)
    """

    def __init__(self, model: nn.Module, layers: Iterable[str], *, detach: bool = False) -> None:
        self.model = model
        self.layers = list(layers)
        self.detach = detach
        self.maps: dict[str, Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> FeatureMaps:
        modules = dict(self.model.named_modules())
        for name in self.layers:
            if name not in modules:
                raise KeyError(f"no module named '{name}'")
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str):
        def record(_module, _inputs, output):
            self.maps[name] = output.detach() if self.detach else output

        return record

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __getitem__(self, name: str) -> Tensor:
        return self.maps[name]


def forward_with_maps(
    model: nn.Module, x: Tensor, layers: Iterable[str], *, detach: bool = False
) -> tuple[Tensor, dict[str, Tensor]]:
    """(logits, {layer: maps}) of one forward pass; the hooks are removed afterwards."""
    with FeatureMaps(model, layers, detach=detach) as fm:
        logits = model(x)
    return logits, dict(fm.maps)


@torch.no_grad()
def map_means(
    model: nn.Module, x: Tensor, layers: Sequence[str], *, batch_size: int = 512
) -> tuple[Tensor, dict[str, Tensor]]:
    """(logits, {layer: Tensor[N, C]}) with each map reduced to its spatial mean (a 'neuron'
    output in the coverage literature); 2-D outputs (linear layers) are kept as they are."""
    logits, means = [], {name: [] for name in layers}
    for start in range(0, len(x), batch_size):
        out, maps = forward_with_maps(model, x[start : start + batch_size], layers, detach=True)
        logits.append(out)
        for name in layers:
            m = maps[name]
            means[name].append(m.flatten(2).mean(2) if m.dim() > 2 else m)
    return torch.cat(logits), {k: torch.cat(v) for k, v in means.items()}


def map_change(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared change per sample and channel, over spatial positions: [N, C, H, W] -> [N, C]."""
    return (a - b).pow(2).flatten(2).mean(2)


def input_pgd(
    model: nn.Module,
    x: Tensor,
    loss_fn: Callable[[Tensor], Tensor],
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: str = "uniform",
    generator: torch.Generator | None = None,
    return_iterates: bool = False,
    project: bool = True,
    start: Tensor | None = None,
) -> Tensor | list[Tensor]:
    """Signed-gradient ascent on the input maximising `loss_fn(x_adv)` (a scalar), projected onto
    the L-inf ball of radius eps around `x` and onto [0, 1].

    project=False: no eps-ball, only [0, 1] (FMP's fgsm-feature.py: x0 = clip(x + alpha * sign
    noise), then steps of size alpha from there, so a pixel can move alpha + alpha). start: the
    starting point (same shape as x) instead of a random one.

    random_start: "uniform" (x + U(-eps, eps), DeepFeature's PGD), "sign" (x + alpha * random
    sign, FMP's start) or "none". return_iterates: the list of every step's iterate instead of
    the last one (the DeepFeature fuzzer's test cases). The model's parameters are frozen during
    the attack and restored afterwards; its mode is left as it is."""

    def clip(adv: Tensor) -> Tensor:
        return (torch.min(torch.max(adv, x - eps), x + eps) if project else adv).clamp(0, 1)

    if start is not None:
        adv = start.to(x)
    elif random_start in ("uniform", "sign"):
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x) * 2 - 1
        adv = x + (eps * noise if random_start == "uniform" else alpha * noise.sign())
    elif random_start == "none":
        adv = x.clone()
    else:
        raise ValueError(f"random_start must be uniform, sign or none, not {random_start!r}")
    adv = clip(adv).detach()
    params = [p for p in model.parameters() if p.requires_grad]
    iterates = []
    try:
        for p in params:
            p.requires_grad_(False)
        for _ in range(steps):
            adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_fn(adv), adv)
            with torch.no_grad():
                adv = clip(adv + alpha * grad.sign())
            if return_iterates:
                iterates.append(adv.detach())
    finally:
        for p in params:
            p.requires_grad_(True)
    return iterates if return_iterates else adv.detach()


def feature_map_pgd(
    model: nn.Module,
    x: Tensor,
    layer: str,
    channels: Sequence[int] | Sequence[Sequence[int]],
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: str = "uniform",
    generator: torch.Generator | None = None,
    return_iterates: bool = False,
    project: bool = True,
    start: Tensor | None = None,
) -> Tensor | list[Tensor]:
    """PGD on the input maximising the change (MSE from the clean input's maps) of chosen maps
    of `layer`, in the L-inf ball of radius eps, inside [0, 1] (see `input_pgd`; project=False
    leaves the ball out; `start` [N, C, H, W]: one starting point shared by every map's attack,
    as FMP draws one random start per batch).

    channels: a list of ints attacks each map separately (batched: result [K, N, C, H, W], one
    adversarial batch per map); a list of lists attacks the summed change of each group of maps.
    Call `model.eval()` first: in train mode BatchNorm would mix the replicas."""
    groups = [[c] if isinstance(c, int) else list(c) for c in channels]
    k, n = len(groups), len(x)
    with torch.no_grad():
        _, ref = forward_with_maps(model, x, [layer], detach=True)
    ref = ref[layer]
    # one-hot weights select each replica's own maps: loss_k = sum_{c in group k} mse_c(replica k)
    weight = torch.zeros(k, ref.shape[1], device=x.device, dtype=x.dtype)
    for i, g in enumerate(groups):
        weight[i, g] = 1.0
    ref_rep = ref.unsqueeze(0).expand(k, *ref.shape).reshape(k * n, *ref.shape[1:])
    x0 = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    w = weight.repeat_interleave(n, 0)  # [K*N, C]

    def loss(adv: Tensor) -> Tensor:
        _, maps = forward_with_maps(model, adv, [layer])
        return (map_change(maps[layer], ref_rep) * w).sum()

    if start is not None:
        start = start.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    out = input_pgd(
        model, x0, loss, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
        generator=generator, return_iterates=return_iterates, project=project, start=start,
    )  # fmt: skip
    if return_iterates:
        return [it.reshape(k, *x.shape) for it in out]
    return out.reshape(k, *x.shape)


class MapMask:
    """Forward hooks that zero chosen output channels of layers (a mask that survives training).

    plan: {layer name: [channel, ...]}. Use as a context manager or call `remove()`.
    """

    def __init__(self, model: nn.Module, plan: Mapping[str, Sequence[int]]) -> None:
        modules = dict(model.named_modules())
        self.handles = []
        for name, chans in plan.items():
            if not len(chans):
                continue
            idx = torch.as_tensor(list(chans), dtype=torch.long)
            self.handles.append(modules[name].register_forward_hook(_zero_channels(idx)))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def __enter__(self) -> MapMask:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _zero_channels(idx: Tensor):
    def hook(_module, _inputs, output):
        mask = torch.ones(output.shape[1], device=output.device, dtype=output.dtype)
        mask[idx.to(output.device)] = 0
        return output * mask.view(1, -1, *([1] * (output.dim() - 2)))

    return hook


def following_batchnorm(model: nn.Module) -> dict[str, str]:
    """{conv name: BatchNorm2d name} where the BN is the next conv-or-BN module after the conv in
    definition order and has as many features as the conv has output channels (FMP's pairing)."""
    order = [
        (name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
    ]
    pairs = {}
    for (name, m), (next_name, nxt) in zip(order, order[1:], strict=False):
        if (
            isinstance(m, nn.Conv2d)
            and isinstance(nxt, nn.BatchNorm2d)
            and nxt.num_features == m.out_channels
        ):
            pairs[name] = next_name
    return pairs


@torch.no_grad()
def prune_maps(model: nn.Module, plan: Mapping[str, Sequence[int]], *, batchnorm: bool = True):
    """Zero the chosen output channels of conv layers in place: weight rows and bias of the conv,
    and (batchnorm=True) the following BatchNorm's gamma, as FMP's pruning does (BN beta kept).
    The conv's output map of a pruned channel is then exactly zero. Returns the plan applied."""
    modules = dict(model.named_modules())
    bns = following_batchnorm(model) if batchnorm else {}
    applied = {}
    for name, chans in plan.items():
        conv = modules[name]
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"'{name}' is a {type(conv).__name__}, not a Conv2d")
        idx = torch.as_tensor(sorted(set(int(c) for c in chans)), dtype=torch.long)
        if len(idx) and (idx.min() < 0 or idx.max() >= conv.out_channels):
            raise IndexError(f"channels {idx.tolist()} outside 0..{conv.out_channels - 1}")
        conv.weight[idx] = 0
        if conv.bias is not None:
            conv.bias[idx] = 0
        if name in bns:
            modules[bns[name]].weight[idx] = 0
        applied[name] = idx.tolist()
    return applied
