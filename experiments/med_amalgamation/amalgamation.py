"""The adaptive amalgamation layer: target and expert features projected to one width and merged
by three levels of attention (KA2ER, arXiv 2410.21085; equations not public, see ka2er.yaml).

1. self-attention over the target's tokens (the foundation model's own context);
2. cross-attention from the target's tokens to each expert's tokens (what expert k offers where);
3. attention across experts: per token (or per input) weights alpha_k, softmax over experts,
   that mix the K cross-attention outputs into the target's stream -> the "gold" features.

Works on flattened tokens, so the same code serves 2D and 3D feature maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RandomFourierPositions(nn.Module):
    """SAM's positional encoding: coordinates in [0, 1] through a fixed random Gaussian matrix,
    sin and cos. Any grid size, any number of dimensions."""

    def __init__(self, dims: int, width: int, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("gauss", scale * torch.randn(dims, width // 2))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., dims) in [0, 1] -> (..., width)."""
        proj = 2 * math.pi * (2 * coords - 1) @ self.gauss
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def grid(self, shape: tuple[int, ...]) -> torch.Tensor:
        """(N, width) for the cell centres of a grid of `shape`, flattened row-major."""
        axes = [(torch.arange(n, device=self.gauss.device) + 0.5) / n for n in shape]
        mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        return self.encode(mesh.reshape(-1, len(shape)))


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, C, *S) -> (B, N, C)


def from_tokens(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *shape)


def _conv1(dims: int, cin: int, cout: int) -> nn.Module:
    return (nn.Conv2d if dims == 2 else nn.Conv3d)(cin, cout, kernel_size=1)


class AmalgamationLayer(nn.Module):
    def __init__(
        self,
        dims: int,
        target_channels: int,
        expert_channels: list[int],
        hidden_size: int = 64,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        fusion: str = "attention",
        expert_attention: str = "token",
    ) -> None:
        from monai.networks.blocks import CrossAttentionBlock, TransformerBlock
        from monai.networks.blocks.mlp import MLPBlock

        super().__init__()
        d, mlp = hidden_size, int(hidden_size * mlp_ratio)
        self.dims, self.fusion, self.expert_attention = dims, fusion, expert_attention
        self.positions = RandomFourierPositions(dims, d)
        self.project_target = _conv1(dims, target_channels, d)
        self.project_experts = nn.ModuleList(_conv1(dims, c, d) for c in expert_channels)
        # level 1: self-attention over the target's tokens (pre-norm transformer block)
        self.self_block = TransformerBlock(d, mlp, num_heads) if fusion != "average" else None
        if fusion == "attention":
            # level 2: one cross-attention per expert (queries: target, keys/values: expert k)
            self.norm_query = nn.LayerNorm(d)
            self.norm_experts = nn.ModuleList(nn.LayerNorm(d) for _ in expert_channels)
            self.cross = nn.ModuleList(CrossAttentionBlock(d, num_heads) for _ in expert_channels)
            # level 3: attention across experts, scores q(target) . k(A_k), values v(A_k)
            self.expert_query = nn.Linear(d, d)
            self.expert_key = nn.Linear(d, d)
            self.expert_value = nn.Linear(d, d)
        self.norm_out = nn.LayerNorm(d)
        self.mlp_out = MLPBlock(d, mlp)

    def forward(
        self, target: torch.Tensor, experts: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """target (B, Ct, *G), experts [(B, Ck, *Gk)] -> gold (B, d, *G) and the expert weights
        alpha (B, N, K) (uniform for averaging, empty for none)."""
        grid = tuple(target.shape[2:])
        pos = self.positions.grid(grid)
        t = to_tokens(self.project_target(target)) + pos
        ex = []
        for proj, e in zip(self.project_experts, experts, strict=True):
            if tuple(e.shape[2:]) != grid:  # experts may downsample differently
                e = F.interpolate(e, size=grid, mode="bilinear" if self.dims == 2 else "trilinear")
            ex.append(to_tokens(proj(e)) + pos)
        batch, n = t.shape[:2]
        if self.fusion == "average":
            gold = torch.stack([t, *ex], dim=0).mean(0)
            alpha = torch.full((batch, n, len(ex)), 1.0 / max(len(ex), 1), device=t.device)
        else:
            t = self.self_block(t)
            gold, alpha = t, t.new_zeros(batch, n, 0)
            if self.fusion == "attention" and ex:
                q = self.norm_query(t)
                contrib = torch.stack(
                    [
                        cross(q, context=norm(e))
                        for cross, norm, e in zip(self.cross, self.norm_experts, ex, strict=True)
                    ],
                    dim=2,
                )  # (B, N, K, d)
                alpha = self._expert_weights(q, contrib)
                gold = t + (alpha.unsqueeze(-1) * self.expert_value(contrib)).sum(2)
        gold = gold + self.mlp_out(self.norm_out(gold))
        return from_tokens(gold, grid), alpha

    def _expert_weights(self, q: torch.Tensor, contrib: torch.Tensor) -> torch.Tensor:
        d = q.shape[-1]
        keys = self.expert_key(contrib)  # (B, N, K, d)
        query = self.expert_query(q)  # (B, N, d)
        if self.expert_attention == "global":  # one weight per expert and input
            scores = query.mean(1, keepdim=True).unsqueeze(2) * keys.mean(1, keepdim=True)
            scores = scores.sum(-1) / math.sqrt(d)  # (B, 1, K)
            return scores.softmax(-1).expand(-1, q.shape[1], -1)
        scores = (query.unsqueeze(2) * keys).sum(-1) / math.sqrt(d)  # (B, N, K)
        return scores.softmax(-1)
