"""The two MONAI model families: DynUNet experts and the SwinUNETR target (model builders)."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from celine.api import load_checkpoint


def build_dynunet(cfg, spatial_dims: int, in_channels: int = 1, out_channels: int = 2) -> nn.Module:
    """MONAI's nnU-Net re-implementation: strides 1, 2, 2, ... so the bottleneck sits at
    1/2**(levels-1) of the input."""
    from monai.networks.nets import DynUNet

    levels = len(cfg.filters)
    strides = [1] + [2] * (levels - 1)
    return DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=[cfg.kernel_size] * levels,
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=list(cfg.filters),
        res_block=cfg.res_block,
    )


def build_swinunetr(cfg, spatial_dims: int, in_channels: int = 1, out_channels: int = 2):
    from monai.networks.nets import SwinUNETR

    kwargs = dict(
        in_channels=in_channels,
        out_channels=out_channels,
        feature_size=cfg.feature_size,
        depths=tuple(cfg.depths),
        num_heads=tuple(cfg.num_heads),
        norm_name=cfg.norm_name,
        spatial_dims=spatial_dims,
        use_v2=cfg.use_v2,
    )
    if "img_size" in inspect.signature(SwinUNETR).parameters:  # MONAI < 1.5
        kwargs["img_size"] = (96,) * spatial_dims
    net = SwinUNETR(**kwargs)
    if cfg.checkpoint:
        load_target_checkpoint(net, cfg.checkpoint)
    return net


def load_target_checkpoint(net: nn.Module, path: str) -> None:
    """A full SwinUNETR state dict, or the self-supervised Swin-ViT weights (`load_from`)."""
    state = load_checkpoint(path, "model.checkpoint")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if any(k.startswith("module.") for k in state):
        net.load_from(state)  # the authors' self-supervised checkpoint layout
    else:
        missing, unexpected = net.load_state_dict(state, strict=False)
        if len(missing) == len(net.state_dict()):
            raise ValueError(f"{path}: no SwinUNETR weights recognised")


def dynunet_model(cfg, ctx):
    """Model builder for `model=dynunet`: a fresh expert for the task's dimensionality."""
    return build_dynunet(cfg, ctx.task_cfg.spatial_dims)


def swinunetr_model(cfg, ctx):
    """Model builder for `model=swinunetr`: the target, for the task's dimensionality."""
    return build_swinunetr(cfg, ctx.task_cfg.spatial_dims)


class ExpertEncoder(nn.Module):
    """A frozen expert that returns its bottleneck features (a forward hook on DynUNet)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.net.requires_grad_(False)
        self.net.eval()
        self._feat: torch.Tensor | None = None
        self.net.bottleneck.register_forward_hook(self._keep)

    @property
    def channels(self) -> int:
        return self.net.filters[-1]

    def _keep(self, module, inputs, output) -> None:
        self._feat = output

    def train(self, mode: bool = True):  # experts never leave eval mode (norm statistics)
        super().train(mode)
        self.net.eval()
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net(x)
        feat, self._feat = self._feat, None
        return feat
