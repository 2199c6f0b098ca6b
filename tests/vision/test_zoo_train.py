"""celine.vision.zoo and celine.vision.train: shapes, width scaling, hookable convs, a training
loop that learns, and checkpoints that resume to the same weights."""

import pytest
import torch

from celine.errors import ConfigError
from celine.vision.datasets import load_images
from celine.vision.train import config_key, embed, evaluate, predict, train_classifier
from celine.vision.zoo import ARCHS, build_classifier, conv_layers


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [8, 32])
def test_every_arch_gives_features_and_logits_at_any_size(arch, size):
    model = build_classifier(arch, 7, 3, width=0.25, size=size).eval()
    x = torch.rand(2, 3, size, size)
    feats = model.features(x)
    assert feats.shape == (2, model.feature_dim)
    assert model.classifier.in_features == model.feature_dim
    assert torch.allclose(model(x), model.classifier(feats))
    assert model(x).shape == (2, 7)


@pytest.mark.parametrize("arch", ARCHS)
def test_width_scales_channels_and_every_conv_is_hookable(arch):
    narrow, wide = (build_classifier(arch, 10, 1, width=w, size=16) for w in (0.25, 0.5))
    convs_n, convs_w = conv_layers(narrow), conv_layers(wide)
    assert list(convs_n) == list(convs_w) and len(convs_n) >= 2
    assert sum(c.out_channels for c in convs_w.values()) > sum(
        c.out_channels for c in convs_n.values()
    )
    seen = []
    hooks = [
        c.register_forward_hook(lambda m, i, o: seen.append(o.shape)) for c in convs_n.values()
    ]
    narrow.eval()(torch.rand(1, 1, 16, 16))
    for h in hooks:
        h.remove()
    assert len(seen) == len(convs_n)


def test_bad_arch_is_a_config_error():
    with pytest.raises(ConfigError, match="model.arch"):
        build_classifier("alexnet", 10, 1)


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", seed=0, size=8)


def test_training_learns_digits_and_helpers_agree(digits):
    torch.manual_seed(0)
    model = build_classifier("lenet5", 10, 1, width=1.0, size=8)
    history = train_classifier(
        model, digits.train, digits.val, epochs=8, lr=1e-2, batch_size=64, optimizer="adam", seed=0
    )
    assert [r["epoch"] for r in history] == list(range(1, 9))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    acc = evaluate(model, digits.test)
    assert acc > 0.8
    logits = predict(model, digits.test.x)
    assert float((logits.argmax(1) == digits.test.y).float().mean()) == pytest.approx(acc)
    assert embed(model, digits.test.x[:5]).shape == (5, model.feature_dim)


def test_checkpoint_resumes_to_the_same_weights_and_a_finished_one_is_reused(digits, tmp_path):
    kw = dict(epochs=3, lr=3e-3, batch_size=128, optimizer="adam", seed=1)

    def fresh():
        torch.manual_seed(0)
        return build_classifier("lenet5", 10, 1, width=0.5, size=8)

    straight = fresh()
    train_classifier(straight, digits.train, None, **kw)

    class Stop(Exception):
        pass

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Stop  # interrupted during epoch 2's bookkeeping, before its checkpoint

    ckpt = tmp_path / "m.pt"
    with pytest.raises(Stop):
        train_classifier(
            fresh(), digits.train, None, **kw, checkpoint=ckpt, on_epoch=stop_after_two
        )
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # on_epoch runs before the save
    resumed = fresh()
    rows = train_classifier(resumed, digits.train, None, **kw, checkpoint=ckpt)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    again = train_classifier(fresh(), digits.train, None, **kw, checkpoint=ckpt)
    assert all(r.get("cached") for r in again) and len(again) == 3
    assert config_key({"a": 1, "b": [2]}) == config_key({"b": [2], "a": 1})
