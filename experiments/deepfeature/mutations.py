"""DeepFeature's seven benign mutations, applied to a batch of [N, C, H, W] images in [0, 1].

Per image one mutation is drawn uniformly (as the official code does), with its parameter drawn
from the official ranges times `strength` (1 = the official ranges): shift 5-15 % in x and y
(random sign), rotation 5-25 degrees (random sign), scale 0.8-1.2, shear 15-30 degrees (random
sign), 3x3 Gaussian blur, contrast x0.5-1.5, brightness x0.5-1.5. Deterministic per seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MUTATIONS = ("shift", "rotate", "scale", "shear", "blur", "contrast", "brightness")


def _affine(kind: str, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A 2x3 matrix for F.affine_grid (maps output coords to input coords, in [-1, 1])."""
    sign = lambda: rng.choice((-1.0, 1.0))  # noqa: E731
    m = np.eye(2)
    t = np.zeros(2)
    if kind == "shift":  # a fraction f of the image = 2f in normalised coordinates
        t = np.array([sign() * rng.uniform(0.05, 0.15), sign() * rng.uniform(0.05, 0.15)])
        t = 2 * t * strength
    elif kind == "rotate":
        a = math.radians(sign() * rng.uniform(5, 25) * strength)
        m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    elif kind == "scale":
        s = 1 + (rng.uniform(0.8, 1.2) - 1) * strength
        m = np.eye(2) / s
    elif kind == "shear":
        a = math.radians(sign() * rng.uniform(15, 30) * strength)
        m = np.array([[1.0, math.tan(a)], [0.0, 1.0]])
    return np.concatenate([m, t[:, None]], axis=1)


def _blur(x: Tensor) -> Tensor:
    k1 = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype) / 4  # 3x3 Gaussian (sigma ~0.85)
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 3, 3).contiguous()
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])


def mutate(x: Tensor, seed: int, strength: float = 1.0) -> tuple[Tensor, list[str]]:
    """(mutated images, the mutation applied to each); the same seed gives the same result."""
    rng = np.random.default_rng(seed)
    kinds = [MUTATIONS[i] for i in rng.integers(0, len(MUTATIONS), len(x))]
    theta = np.zeros((len(x), 2, 3))
    factor = np.ones(len(x))
    for i, kind in enumerate(kinds):
        theta[i] = _affine(kind, rng, strength)
        if kind in ("contrast", "brightness"):
            factor[i] = 1 + (rng.uniform(0.5, 1.5) - 1) * strength
    grid = F.affine_grid(torch.tensor(theta, dtype=x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    blur = torch.tensor([k == "blur" for k in kinds])
    if blur.any():
        out[blur] = _blur(x[blur])
    f = torch.tensor(factor, dtype=x.dtype).view(-1, 1, 1, 1)
    contrast = torch.tensor([k == "contrast" for k in kinds])
    bright = torch.tensor([k == "brightness" for k in kinds])
    if contrast.any():
        mean = x[contrast].mean((1, 2, 3), keepdim=True)
        out[contrast] = (x[contrast] - mean) * f[contrast] + mean
    if bright.any():
        out[bright] = x[bright] * f[bright]
    return out.clamp(0, 1), kinds
