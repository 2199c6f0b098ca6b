"""Width-scalable image classifiers: LeNet-5, ResNet-20, VGG-16-BN and PreAct-ResNet-18.

Every model has `.features(x) -> [N, D]` (the penultimate representation), `.classifier` (the
last linear layer, D -> classes), `.feature_dim` (D), and named `nn.Conv2d` layers that forward
hooks can attach to (`conv_layers(model)`). Every channel count is multiplied by `width`, and
every model ends in adaptive pooling so that any input size from 8 pixels up works: pooling
stages that would shrink the map below 2 pixels are skipped (digits are 8x8 natively).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from celine.errors import ConfigError
from celine.vision.models import ARCHS

__all__ = ["ARCHS", "build_classifier", "conv_layers"]


def _ch(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class Classifier(nn.Module):
    """features -> classifier; subclasses define `self.body` (a module returning [N, D])."""

    feature_dim: int

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class LeNet5(Classifier):
    """LeNet-5 (conv 6 - pool - conv 16 - pool - fc 120 - fc 84); 'same' padding and an adaptive
    pool to 5x5 (or smaller for small images) so that it takes any size."""

    def __init__(self, num_classes: int, in_channels: int, width: float, size: int) -> None:
        super().__init__()
        c1, c2, f1, f2 = _ch(6, width), _ch(16, width), _ch(120, width), _ch(84, width)
        grid = max(1, min(5, size // 2))  # 5x5 at 32 pixels, as in LeNet-5; no pooling at 8
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.body = nn.Sequential(
            self.conv1, nn.ReLU(inplace=True), nn.MaxPool2d(2) if size >= 4 else nn.Identity(),
            self.conv2, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(grid), nn.Flatten(),
            nn.Linear(c2 * grid * grid, f1), nn.ReLU(inplace=True),
            nn.Linear(f1, f2), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.feature_dim = f2
        self.classifier = nn.Linear(f2, num_classes)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        return self.conv2(torch.relu(self.bn2(out))) + skip


def _strides(size: int, downsamples: int) -> list[int]:
    """Stride 2 for each downsampling stage while the map stays at least 2 pixels wide."""
    out, current = [], size
    for _ in range(downsamples):
        if current >= 4:
            out.append(2)
            current = (current + 1) // 2
        else:
            out.append(1)
    return out


class ResNet(Classifier):
    """CIFAR-style ResNet (3 stages of 16/32/64 channels, ResNet-20 = 3 blocks each) and the
    PreAct-ResNet-18 (4 stages of 64..512 channels, 2 pre-activation blocks each)."""

    def __init__(self, block, stage_channels, blocks, num_classes, in_channels, width, size):
        super().__init__()
        chans = [_ch(c, width) for c in stage_channels]
        self.conv1 = nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=False)
        stem: list[nn.Module] = [self.conv1]
        if block is BasicBlock:  # the pre-activation network normalises inside its blocks
            stem += [nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        strides = [1, *_strides(size, len(chans) - 1)]
        layers, cin = [], chans[0]
        for i, (cout, n, stride) in enumerate(zip(chans, blocks, strides, strict=True)):
            stage = [
                block(cin if j == 0 else cout, cout, stride if j == 0 else 1) for j in range(n)
            ]
            layers.append(nn.Sequential(*stage))
            self.add_module(f"layer{i + 1}", layers[-1])
            cin = cout
        tail: list[nn.Module] = []
        if block is PreActBlock:
            tail = [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.head = nn.Sequential(*tail, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = cin
        self.classifier = nn.Linear(cin, num_classes)

    def features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for i in range(1, 5):
            layer = getattr(self, f"layer{i}", None)
            if layer is not None:
                x = layer(x)
        return self.head(x)


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16BN(Classifier):
    """VGG-16 with batch norm (13 convs), the CIFAR variant: one linear classifier on the pooled
    512-channel map."""

    def __init__(self, num_classes: int, in_channels: int, width: float, size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, current, index = in_channels, size, 0
        for item in _VGG16:
            if item == "M":
                if current >= 4:  # skip pools that would leave less than 2x2
                    layers.append(nn.MaxPool2d(2))
                    current //= 2
                continue
            cout = _ch(int(item), width)
            index += 1
            conv = nn.Conv2d(cin, cout, 3, padding=1)
            setattr(self, f"conv{index}", conv)
            layers += [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = cin
        self.classifier = nn.Linear(cin, num_classes)


def build_classifier(
    arch: str, num_classes: int, in_channels: int, *, width: float = 1.0, size: int = 32
) -> nn.Module:
    """One of ARCHS, with every channel count multiplied by `width`, for `size`x`size` inputs."""
    if arch not in ARCHS:
        raise ConfigError("model.arch", arch, "expected one of " + ", ".join(ARCHS))
    if width <= 0:
        raise ConfigError("model.width", width, "expected a positive width multiplier")
    if num_classes < 1 or in_channels < 1:
        raise ConfigError("num_classes/in_channels", (num_classes, in_channels), "expected >= 1")
    args = (num_classes, in_channels, width, size)
    if arch == "lenet5":
        return LeNet5(*args)
    if arch == "resnet20":
        return ResNet(BasicBlock, (16, 32, 64), (3, 3, 3), *args)
    if arch == "vgg16_bn":
        return VGG16BN(*args)
    return ResNet(PreActBlock, (64, 128, 256, 512), (2, 2, 2, 2), *args)


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Every nn.Conv2d of `model` by its qualified name, in forward order of registration.
    Modules registered twice (LeNet's conv1 is also body.0) are listed once, by the first name."""
    seen: set[int] = set()
    out: dict[str, nn.Conv2d] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and id(module) not in seen:
            seen.add(id(module))
            out[name] = module
    return out
