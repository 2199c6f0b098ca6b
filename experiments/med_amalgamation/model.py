"""The amalgamated network: target SwinUNETR encoder, frozen experts, amalgamation layer, prompt
encoder and mask decoder (KA2ER's pipeline, steps 3-6 of the notes)."""

from __future__ import annotations

import torch
from torch import nn

from .amalgamation import AmalgamationLayer
from .decoder import MaskDecoder, PromptEncoder
from .nets import ExpertEncoder


class AmalgamatedSegmenter(nn.Module):
    def __init__(self, target: nn.Module, experts: list[nn.Module], cfg, dims: int) -> None:
        super().__init__()
        self.target, self.dims, self.stage = target, dims, cfg.target_stage
        self.experts = nn.ModuleList(ExpertEncoder(e) for e in experts)
        fs = target.swinViT.embed_dim if hasattr(target.swinViT, "embed_dim") else None
        fs = fs or target.encoder1.layer.conv1.conv.out_channels
        self.amalgamation = AmalgamationLayer(
            dims,
            target_channels=fs * 2**self.stage,
            expert_channels=[e.channels for e in self.experts],
            hidden_size=cfg.hidden_size,
            num_heads=cfg.num_heads,
            mlp_ratio=cfg.mlp_ratio,
            fusion=cfg.fusion,
            expert_attention=cfg.expert_attention,
        )
        self.prompts = PromptEncoder(dims, cfg.hidden_size, self.amalgamation.positions)
        # skip widths, deep to shallow: Swin stages stage-1 .. 0, then the full-resolution conv
        skips = [fs * 2**s for s in range(self.stage - 1, -1, -1)] + [fs]
        self.decoder = MaskDecoder(
            dims, cfg.hidden_size, skips, cfg.num_heads, cfg.decoder_depth, cfg.mlp_ratio
        )
        self.prompt_kind, self.dense_box, self.use_skips = cfg.prompt, cfg.dense_box, cfg.skips

    def trainable_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("experts.")]

    def _skips(self, x, hidden):
        # the target's own UNETR encoder blocks turn Swin stages into skip features
        encoders = [self.target.encoder2, self.target.encoder3, self.target.encoder4]
        skips = [encoders[s](hidden[s]) for s in range(self.stage - 1, -1, -1)]
        skips = [*skips, self.target.encoder1(x)]
        if not self.use_skips:  # the ablation: same shapes and parameters, no information
            skips = [torch.zeros_like(s) for s in skips]
        return skips

    @torch.no_grad()
    def expert_features(self, x) -> list[torch.Tensor]:
        return [e(x) for e in self.experts]

    def forward(self, x, boxes=None, points=None, expert_feats=None):
        """x (B, 1, *S) -> mask logits (B, 1, *S) and expert weights alpha (B, N, K).
        `expert_feats`: the frozen experts' features of x, when computed once beforehand."""
        hidden = self.target.swinViT(x, self.target.normalize)
        feats = self.expert_features(x) if expert_feats is None else expert_feats
        gold, alpha = self.amalgamation(hidden[self.stage], feats)
        if self.prompt_kind == "none" or (boxes is None and points is None):
            sparse = self.prompts.empty(x.shape[0])
        else:
            sparse = self.prompts(
                x.shape[2:],
                boxes if "box" in self.prompt_kind else None,
                points if "point" in self.prompt_kind else None,
            )
        grid = tuple(gold.shape[2:])
        pe = self.amalgamation.positions.grid(grid)
        dense = self.prompts.no_mask.weight[0]
        if self.dense_box and boxes is not None and "box" in self.prompt_kind:
            dense = dense + self.prompts.dense_box(boxes, x.shape[2:], grid)
        logits = self.decoder(gold, pe, sparse, dense, self._skips(x, hidden))
        return logits, alpha


def count(params) -> int:
    return sum(p.numel() for p in params)


__all__ = ["AmalgamatedSegmenter", "count", "torch"]
