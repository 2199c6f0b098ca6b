"""Backdoor attacks by data poisoning: BadNets (patch), Blend (alpha-blended pattern), WaNet
(warping field) and SIG (sinusoidal signal, clean-label), re-implemented after their papers and
BackdoorBench's defaults (no code vendored). Images are [N, C, H, W] floats in [0, 1]."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from celine.vision.datasets import ImageSet

ATTACKS = ("badnets", "blend", "wanet", "sig")
# BadNets variants for robustness checks (triggers the defence's settings were not tuned on);
# BackdoorBench's default is a white square in the bottom-right corner
PATCH_SHAPES = ("square", "checker", "cross")
PATCH_POSITIONS = ("bottom_right", "top_left", "top_right", "bottom_left", "center")


def patch_mask(shape: str, p: int) -> tuple[Tensor, Tensor]:
    """(where the patch writes [p, p] bool, what it writes there [p, p]): a white square, a
    checkerboard of white and black, or a white plus sign (the rest of the square untouched)."""
    ii, jj = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    if shape == "square":
        return torch.ones(p, p, dtype=torch.bool), torch.ones(p, p)
    if shape == "checker":
        return torch.ones(p, p, dtype=torch.bool), ((ii + jj) % 2 == 0).float()
    if shape == "cross":
        return (ii == p // 2) | (jj == p // 2), torch.ones(p, p)
    raise ValueError(f"unknown patch shape {shape!r}; expected one of {PATCH_SHAPES}")


def patch_origin(position: str, p: int, h: int, w: int) -> tuple[int, int]:
    rows = {"top": 0, "bottom": h - p, "center": (h - p) // 2}
    cols = {"left": 0, "right": w - p, "center": (w - p) // 2}
    if position == "center":
        return rows["center"], cols["center"]
    if position not in PATCH_POSITIONS:
        raise ValueError(f"unknown patch position {position!r}; expected one of {PATCH_POSITIONS}")
    vert, horiz = position.split("_")
    return rows[vert], cols[horiz]


@dataclass
class Trigger:
    """A trigger function fixed by the attack's config and seed (patterns and warp fields are
    drawn once, so training and test images get the same trigger)."""

    attack: str
    patch_size: int = 3
    blend_alpha: float = 0.2
    pattern: Tensor | None = None  # blend: [C, H, W] in [0, 1]
    grid: Tensor | None = None  # wanet: [1, H, W, 2] sampling grid
    sig_delta: float = 20 / 255
    sig_freq: int = 6
    patch_shape: str = "square"
    patch_position: str = "bottom_right"

    def __call__(self, x: Tensor) -> Tensor:
        if self.attack == "badnets":
            out = x.clone()
            p = self.patch_size
            where, value = patch_mask(self.patch_shape, p)
            r, c = patch_origin(self.patch_position, p, x.shape[-2], x.shape[-1])
            region = out[..., r : r + p, c : c + p]
            region[..., where] = value[where].to(x)
            return out
        if self.attack == "blend":
            return (1 - self.blend_alpha) * x + self.blend_alpha * self.pattern.to(x)
        if self.attack == "wanet":
            grid = self.grid.to(x).expand(len(x), -1, -1, -1)
            return F.grid_sample(x, grid, align_corners=True).clamp(0, 1)
        if self.attack == "sig":
            width = x.shape[-1]
            cols = torch.arange(width, device=x.device, dtype=x.dtype)
            signal = self.sig_delta * torch.sin(2 * math.pi * cols * self.sig_freq / width)
            return (x + signal).clamp(0, 1)
        raise ValueError(f"unknown attack {self.attack!r}")


def make_trigger(
    attack: str,
    channels: int,
    size: int,
    *,
    seed: int,
    patch_size: int = 3,
    blend_alpha: float = 0.2,
    wanet_k: int = 4,
    wanet_s: float = 0.5,
    sig_delta: float = 20 / 255,
    sig_freq: int = 6,
    patch_shape: str = "square",
    patch_position: str = "bottom_right",
) -> Trigger:
    g = torch.Generator().manual_seed(10_007 + seed)
    trig = Trigger(
        attack, patch_size, blend_alpha, sig_delta=sig_delta, sig_freq=sig_freq,
        patch_shape=patch_shape, patch_position=patch_position,
    )  # fmt: skip
    if attack == "blend":
        # BackdoorBench blends a Hello-Kitty picture; any fixed image works: a fixed random one
        trig.pattern = torch.rand(channels, size, size, generator=g)
    elif attack == "wanet":
        # WaNet: a k x k random flow field, normalised by its mean magnitude, upsampled
        # bicubically to the image, scaled by s / size and added to the identity grid
        flow = torch.rand(1, 2, wanet_k, wanet_k, generator=g) * 2 - 1
        flow = flow / flow.abs().mean()
        flow = F.interpolate(flow, size=(size, size), mode="bicubic", align_corners=True)
        flow = flow.permute(0, 2, 3, 1)
        lin = torch.linspace(-1, 1, size)
        yy, xx = torch.meshgrid(lin, lin, indexing="ij")
        identity = torch.stack((xx, yy), 2)[None]
        trig.grid = (identity + wanet_s * flow / size).clamp(-1, 1)
    return trig


def poison_indices(y: Tensor, attack: str, ratio: float, target: int, seed: int) -> Tensor:
    """floor(ratio * N) training images to poison. Poison-label attacks draw them from the
    non-target classes (their labels become `target`); SIG is clean-label: it draws from the
    target class only (at most all of it) and keeps the labels."""
    g = torch.Generator().manual_seed(20_011 + seed)
    n = int(math.floor(ratio * len(y)))
    pool = (y == target) if attack == "sig" else (y != target)
    pool = torch.nonzero(pool).flatten()
    chosen = pool[torch.randperm(len(pool), generator=g)[: min(n, len(pool))]]
    return chosen.sort().values


def poison_set(
    data: ImageSet, trigger: Trigger, ratio: float, target: int, seed: int
) -> tuple[ImageSet, Tensor]:
    """(poisoned training set, poisoned indices): triggered images relabelled to `target`."""
    idx = poison_indices(data.y, trigger.attack, ratio, target, seed)
    x, y = data.x.clone(), data.y.clone()
    if len(idx):
        x[idx] = trigger(x[idx])
        y[idx] = target
    return ImageSet(x, y), idx


def triggered_test(data: ImageSet, trigger: Trigger, target: int) -> ImageSet:
    """The non-target test images with the trigger and their TRUE labels (ASR = rate of
    `target` predictions on it, RA = accuracy on it)."""
    keep = data.y != target
    return ImageSet(trigger(data.x[keep]), data.y[keep])
