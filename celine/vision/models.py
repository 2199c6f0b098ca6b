"""The `small_cnn` entry of the `model` group: one of the zoo's classifiers, built for the task's
class count, optionally loaded from a local checkpoint. Light: no torch at import (validation
and `celine ls` import this module)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celine.registry import register_model
from celine.schema import existing_path, in_range, one_of

# The zoo's architectures (celine.vision.zoo re-exports this tuple; kept here so that validating
# a config does not import torch).
ARCHS = ("lenet5", "resnet20", "vgg16_bn", "preact_resnet18")


@dataclass
class SmallCNNConfig:
    name: str = "small_cnn"
    arch: str = "lenet5"
    width: float = 1.0  # every layer's channel count is multiplied by this
    path: str | None = None  # optional local checkpoint (a state_dict saved by torch.save)

    def __post_init__(self) -> None:
        one_of("model.arch", self.arch, ARCHS)
        in_range("model.width", self.width, 1e-3)
        existing_path("model.path", self.path, kind="file")


register_model(
    "small_cnn",
    impl="celine.vision.models:small_cnn",
    config="celine.vision.models:SmallCNNConfig",
    description="an image classifier of celine.vision.zoo (lenet5, resnet20, vgg16_bn, ...)",
)


def small_cnn(cfg: Any, ctx: Any):
    """`ctx.build_model()` for model=small_cnn: the classifier shaped for the task's data.

    The task may say its shape through `num_classes`, `in_channels` and `size` attributes;
    rooms that build several classifiers (teachers, students) call `build_classifier` directly
    with `ctx.model_cfg.arch` and `ctx.model_cfg.width`."""
    import torch

    from celine.vision.zoo import build_classifier

    task = getattr(ctx, "task", None)
    model = build_classifier(
        cfg.arch,
        int(getattr(task, "num_classes", 10)),
        int(getattr(task, "in_channels", 1)),
        width=cfg.width,
        size=int(getattr(task, "size", 32)),
    )
    if cfg.path:
        state = torch.load(cfg.path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    return model
