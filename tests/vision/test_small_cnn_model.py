"""The `small_cnn` model group entry: registered, validated early, built for the task's shape."""

from types import SimpleNamespace

import pytest
import torch

from celine.errors import ConfigError
from celine.vision.models import SmallCNNConfig, small_cnn


def test_small_cnn_is_registered_and_its_config_is_checked(tmp_path):
    from celine import registry

    registry.discover()
    assert "small_cnn" in registry.MODELS
    with pytest.raises(ConfigError, match="model.arch"):
        SmallCNNConfig(arch="alexnet")
    with pytest.raises(ConfigError, match="model.width"):
        SmallCNNConfig(width=0.0)
    with pytest.raises(ConfigError, match="model.path"):
        SmallCNNConfig(path=str(tmp_path / "absent.pt"))


def test_builder_takes_the_task_shape_and_loads_a_local_checkpoint(tmp_path):
    task = SimpleNamespace(num_classes=4, in_channels=3, size=16)
    model = small_cnn(SmallCNNConfig(arch="resnet20", width=0.25), SimpleNamespace(task=task))
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 4)
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    again = small_cnn(
        SmallCNNConfig(arch="resnet20", width=0.25, path=str(path)), SimpleNamespace(task=task)
    )
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
