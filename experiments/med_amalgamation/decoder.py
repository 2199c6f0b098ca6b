"""SAM-style prompt encoder and two-way-attention mask decoder, for 2D and 3D.

Written here rather than imported from `segment-anything` (2D only, and its decoder repeats the
image embedding once per prompt). The decoder also fuses the target's skip features while it
upsamples (UNETR up-blocks), so masks come back at full resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from .amalgamation import RandomFourierPositions, from_tokens, to_tokens


class PromptEncoder(nn.Module):
    """Boxes (two corners) and points as sparse tokens: Fourier position + a learned type."""

    def __init__(self, dims: int, width: int, positions: RandomFourierPositions) -> None:
        super().__init__()
        self.dims, self.positions = dims, positions
        self.corner = nn.Embedding(2, width)  # box min corner, box max corner
        self.point = nn.Embedding(1, width)  # positive point
        self.no_prompt = nn.Embedding(1, width)  # stands in when no prompt is given
        self.no_mask = nn.Embedding(1, width)  # dense embedding (SAM: no mask prompt)
        self.in_box = nn.Embedding(1, width)  # dense box: added to tokens inside the box

    def dense_box(self, boxes: torch.Tensor, image_size, grid) -> torch.Tensor:
        """(B, N, width): `in_box` on the tokens whose cell centre lies inside the box, 0 elsewhere."""
        size = torch.as_tensor(image_size, dtype=torch.float32, device=boxes.device)
        axes = [(torch.arange(n, device=boxes.device) + 0.5) / n for n in grid]
        centres = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(grid))
        lo = boxes[:, None, 0] / size  # (B, 1, dims)
        hi = (boxes[:, None, 1] + 1) / size
        inside = ((centres >= lo) & (centres <= hi)).all(-1).float()  # (B, N)
        return inside.unsqueeze(-1) * self.in_box.weight

    def forward(self, image_size, boxes=None, points=None) -> torch.Tensor:
        """boxes (B, 2, dims), points (B, P, dims) in voxel units -> (B, T, width)."""
        size = torch.as_tensor(image_size, dtype=torch.float32, device=self.corner.weight.device)
        tokens = []
        if boxes is not None:
            tokens.append(self.positions.encode((boxes + 0.5) / size) + self.corner.weight)
        if points is not None:
            tokens.append(self.positions.encode((points + 0.5) / size) + self.point.weight)
        if not tokens:
            raise ValueError("PromptEncoder needs boxes or points; use `empty` for none")
        return torch.cat(tokens, dim=1)

    def empty(self, batch: int) -> torch.Tensor:
        return self.no_prompt.weight.expand(batch, 1, -1)


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, q, k, v):
        return self.attn(q, k, v, need_weights=False)[0]


class TwoWayBlock(nn.Module):
    """SAM's block: tokens self-attend, tokens attend to the image, MLP on tokens, the image
    attends to the tokens. Positions are re-added to queries and keys at every attention."""

    def __init__(self, width: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.self_attn, self.norm1 = _Attention(width, heads), nn.LayerNorm(width)
        self.to_image, self.norm2 = _Attention(width, heads), nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), nn.GELU(), nn.Linear(mlp, width))
        self.norm3 = nn.LayerNorm(width)
        self.to_tokens, self.norm4 = _Attention(width, heads), nn.LayerNorm(width)

    def forward(self, tokens, image, token_pe, image_pe):
        q = tokens + token_pe
        tokens = self.norm1(tokens + self.self_attn(q, q, tokens))
        tokens = self.norm2(tokens + self.to_image(tokens + token_pe, image + image_pe, image))
        tokens = self.norm3(tokens + self.mlp(tokens))
        image = self.norm4(image + self.to_tokens(image + image_pe, tokens + token_pe, tokens))
        return tokens, image


class MaskDecoder(nn.Module):
    """Two-way transformer between [mask token, prompt tokens] and the amalgamated features,
    then upsampling with the target's skip features, then a hypernetwork dot product."""

    def __init__(
        self,
        dims: int,
        width: int,
        skip_channels: list[int],
        heads: int = 4,
        depth: int = 2,
        mlp_ratio: float = 2.0,
        norm_name: str = "instance",
    ) -> None:
        from monai.networks.blocks import UnetrUpBlock

        super().__init__()
        mlp = int(width * mlp_ratio)
        self.mask_token = nn.Embedding(1, width)
        self.blocks = nn.ModuleList(TwoWayBlock(width, heads, mlp) for _ in range(depth))
        self.final_attn, self.final_norm = _Attention(width, heads), nn.LayerNorm(width)
        ups, cin = [], width
        for c in skip_channels:  # deep to shallow; each doubles the resolution
            ups.append(UnetrUpBlock(dims, cin, c, 3, 2, norm_name=norm_name, res_block=True))
            cin = c
        self.ups = nn.ModuleList(ups)
        self.hyper = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, cin))

    def forward(self, gold, image_pe, prompt_tokens, dense, skips):
        """gold (B, d, *G); image_pe (N, d); prompt_tokens (B, T, d); dense (d,); skips: feature
        maps from deep to shallow, the last at full resolution -> mask logits (B, 1, *S)."""
        grid = tuple(gold.shape[2:])
        batch = gold.shape[0]
        image = to_tokens(gold) + dense  # dense: (d,) or (B, N, d)
        tokens = torch.cat([self.mask_token.weight.expand(batch, 1, -1), prompt_tokens], dim=1)
        token_pe = tokens
        image_pe = image_pe.unsqueeze(0)
        for block in self.blocks:
            tokens, image = block(tokens, image, token_pe, image_pe)
        q = tokens + token_pe
        tokens = self.final_norm(tokens + self.final_attn(q, image + image_pe, image))
        x = from_tokens(image, grid)
        for up, skip in zip(self.ups, skips, strict=True):
            x = up(x, skip)
        weights = self.hyper(tokens[:, 0])  # (B, C)
        return torch.einsum("bc,bc...->b...", weights, x).unsqueeze(1)
