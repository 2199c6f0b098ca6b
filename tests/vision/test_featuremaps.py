"""celine.vision.featuremaps on small hand-built CNNs: hooks, the feature-map attack, masks, pruning."""

import copy

import pytest
import torch
from torch import nn

from celine.vision.featuremaps import (
    FeatureMaps,
    MapMask,
    conv_layers,
    feature_map_pgd,
    following_batchnorm,
    forward_with_maps,
    map_change,
    map_means,
    prune_maps,
    resolve_layer,
)


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


@pytest.fixture
def net():
    torch.manual_seed(0)
    model = TinyCNN()
    with torch.no_grad():  # non-trivial BN statistics so that eval mode differs from identity
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    return model.eval()


def _x(n=5, seed=1):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_hooks_return_every_layer_shape_and_leave_the_model_unchanged(net):
    x = _x()
    before = copy.deepcopy(net.state_dict())
    plain = net(x)
    logits, maps = forward_with_maps(net, x, list(conv_layers(net)))
    assert list(conv_layers(net)) == ["conv1", "conv2"]
    assert maps["conv1"].shape == (5, 4, 8, 8) and maps["conv2"].shape == (5, 6, 8, 8)
    assert torch.equal(logits, plain)
    assert torch.equal(maps["conv1"], net.conv1(x))
    # hooks are gone and nothing changed
    assert not net.conv1._forward_hooks and not net.conv2._forward_hooks
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    with FeatureMaps(net, ["bn2"], detach=True) as fm:
        net(x)
    assert fm["bn2"].shape == (5, 6, 8, 8) and not fm["bn2"].requires_grad
    _, means = map_means(net, x, ["conv2", "head"], batch_size=2)
    assert torch.allclose(means["conv2"], maps["conv2"].mean((2, 3)))
    assert means["head"].shape == (5, 3)
    assert resolve_layer(net, None) == "conv2" and resolve_layer(net, 0) == "conv1"
    with pytest.raises(KeyError):
        resolve_layer(net, "nope")


def test_map_change_is_the_spatial_mean_squared_difference():
    a = torch.zeros(2, 3, 2, 2)
    b = a.clone()
    b[1, 2, 0, 0] = 2.0  # one position of four changes by 2: mse = 4 / 4
    out = map_change(a, b)
    assert out.shape == (2, 3)
    assert out[1, 2] == 1.0 and out.sum() == 1.0


def test_attack_increases_each_target_map_change_and_stays_in_the_ball(net):
    x = _x(8)
    eps, alpha = 0.1, 0.03
    adv = feature_map_pgd(
        net, x, "conv2", [0, 3, 5], eps=eps, alpha=alpha, steps=6,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert adv.shape == (3, 8, 1, 8, 8)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    _, ref = forward_with_maps(net, x, ["conv2"], detach=True)
    rand = x + eps * (torch.rand(x.shape, generator=torch.Generator().manual_seed(9)) * 2 - 1)
    _, noisy = forward_with_maps(net, rand.clamp(0, 1), ["conv2"], detach=True)
    for k, c in enumerate([0, 3, 5]):
        _, got = forward_with_maps(net, adv[k], ["conv2"], detach=True)
        attacked = map_change(got["conv2"], ref["conv2"])[:, c].mean()
        random = map_change(noisy["conv2"], ref["conv2"])[:, c].mean()
        assert attacked > 3 * random
    # the batched attack of map 3 equals attacking map 3 alone from the same start
    alone = feature_map_pgd(
        net, x, "conv2", [3], eps=eps, alpha=alpha, steps=6, random_start="none"
    )  # fmt: skip
    batched = feature_map_pgd(
        net, x, "conv2", [0, 3], eps=eps, alpha=alpha, steps=6, random_start="none"
    )  # fmt: skip
    assert torch.allclose(alone[0], batched[1], atol=1e-6)
    assert all(p.requires_grad for p in net.parameters()) and not net.training


def test_grouped_attack_and_iterates(net):
    x = _x(4)
    its = feature_map_pgd(
        net, x, "conv1", [[0, 1, 2]], eps=0.1, alpha=0.05, steps=3, return_iterates=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert len(its) == 3 and its[0].shape == (1, 4, 1, 8, 8)
    for it in its:
        assert (it - x).abs().max() <= 0.1 + 1e-6


def test_pruning_zeroes_exactly_the_chosen_maps(net):
    x = _x()
    _, before = forward_with_maps(net, x, ["conv1", "conv2", "bn2"], detach=True)
    assert following_batchnorm(net) == {"conv1": "bn1", "conv2": "bn2"}
    prune_maps(net, {"conv2": [1, 4]})
    _, after = forward_with_maps(net, x, ["conv1", "conv2", "bn2"], detach=True)
    assert torch.equal(after["conv1"], before["conv1"])
    pruned = after["conv2"][:, [1, 4]]
    assert torch.count_nonzero(pruned) == 0
    kept = [0, 2, 3, 5]
    assert torch.equal(after["conv2"][:, kept], before["conv2"][:, kept])
    assert torch.all(net.bn2.weight[[1, 4]] == 0) and torch.all(net.bn2.weight[kept] != 0)
    # after the BN a pruned map is its constant beta (BN bias kept, as FMP does)
    assert torch.allclose(after["bn2"][:, 1], net.bn2.bias[1].expand(5, 8, 8))
    with pytest.raises(IndexError):
        prune_maps(net, {"conv2": [6]})


def test_mask_zeroes_the_chosen_maps_while_it_is_on(net):
    x = _x()
    _, before = forward_with_maps(net, x, ["conv1"], detach=True)
    with MapMask(net, {"conv1": [2]}):
        _, masked = forward_with_maps(net, x, ["conv1"], detach=True)
    _, after = forward_with_maps(net, x, ["conv1"], detach=True)
    assert torch.count_nonzero(masked["conv1"][:, 2]) == 0
    assert torch.equal(masked["conv1"][:, [0, 1, 3]], before["conv1"][:, [0, 1, 3]])
    assert torch.equal(after["conv1"], before["conv1"])
