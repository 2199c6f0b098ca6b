"""Shapes through the amalgamation layer and the decoder (2D and 3D), the expert weights, the
prompt's effect, and that amalgamation training leaves the experts untouched."""

from types import SimpleNamespace

import pytest
import torch

from celine.experiments.med_amalgamation.amalgamation import AmalgamationLayer
from celine.experiments.med_amalgamation.config import DynUNetConfig, KA2ERConfig, SwinUNETRConfig
from celine.experiments.med_amalgamation.data import boxes_from_masks
from celine.experiments.med_amalgamation.decoder import MaskDecoder, PromptEncoder
from celine.experiments.med_amalgamation.model import AmalgamatedSegmenter
from celine.experiments.med_amalgamation.nets import build_dynunet, build_swinunetr

TINY_SWIN = SwinUNETRConfig(feature_size=12, depths=[1, 1, 1, 1], num_heads=[3, 3, 3, 3])
TINY_EXPERT = DynUNetConfig(filters=[4, 8, 16, 32], epochs=1)


@pytest.mark.parametrize("fusion", ["attention", "average", "none"])
@pytest.mark.parametrize("dims", [2, 3])
def test_amalgamation_layer_shapes_and_expert_weights(dims, fusion):
    torch.manual_seed(0)
    grid = (8,) * dims if dims == 2 else (4,) * dims
    layer = AmalgamationLayer(dims, 48, [32, 64], hidden_size=32, num_heads=4, fusion=fusion)
    target = torch.randn(2, 48, *grid)
    # the second expert downsamples once more: the layer resamples it onto the target's grid
    experts = [torch.randn(2, 32, *grid), torch.randn(2, 64, *(g // 2 for g in grid))]
    gold, alpha = layer(target, experts)
    n = 1
    for g in grid:
        n *= g
    assert gold.shape == (2, 32, *grid)
    assert torch.isfinite(gold).all()
    if fusion == "none":
        assert alpha.shape == (2, n, 0)
    else:
        assert alpha.shape == (2, n, 2)
        assert torch.allclose(alpha.sum(-1), torch.ones(2, n), atol=1e-5)


def test_attention_uses_the_experts_and_none_ignores_them():
    torch.manual_seed(0)
    target = torch.randn(1, 48, 8, 8)
    experts = [torch.randn(1, 32, 8, 8)]
    changed = [torch.randn(1, 32, 8, 8)]
    for fusion, differs in (("attention", True), ("none", False)):
        layer = AmalgamationLayer(2, 48, [32], hidden_size=32, fusion=fusion).eval()
        a, _ = layer(target, experts)
        b, _ = layer(target, changed)
        assert (not torch.allclose(a, b)) is differs


def test_global_expert_attention_gives_one_weight_per_input():
    layer = AmalgamationLayer(2, 48, [32, 32, 32], hidden_size=32, expert_attention="global")
    _, alpha = layer(torch.randn(2, 48, 8, 8), [torch.randn(2, 32, 8, 8)] * 3)
    assert torch.allclose(alpha, alpha[:, :1].expand_as(alpha))


def test_decoder_3d_returns_full_resolution_masks():
    torch.manual_seed(0)
    layer = AmalgamationLayer(3, 24, [16], hidden_size=32)
    prompts = PromptEncoder(3, 32, layer.positions)
    decoder = MaskDecoder(3, 32, skip_channels=[12, 8], heads=4, depth=1)
    gold, _ = layer(torch.randn(2, 24, 4, 4, 4), [torch.randn(2, 16, 4, 4, 4)])
    boxes = torch.tensor([[[1.0, 1.0, 1.0], [8.0, 9.0, 10.0]]] * 2)
    sparse = prompts((16, 16, 16), boxes=boxes)
    skips = [torch.randn(2, 12, 8, 8, 8), torch.randn(2, 8, 16, 16, 16)]
    out = decoder(gold, layer.positions.grid((4, 4, 4)), sparse, prompts.no_mask.weight[0], skips)
    assert out.shape == (2, 1, 16, 16, 16)


def _tiny_model(prompt="box", fusion="attention", experts=2):
    torch.manual_seed(0)
    target = build_swinunetr(TINY_SWIN, 2)
    nets = [build_dynunet(TINY_EXPERT, 2) for _ in range(experts)]
    cfg = KA2ERConfig(hidden_size=32, num_heads=4, decoder_depth=1, prompt=prompt, fusion=fusion)
    return AmalgamatedSegmenter(target, nets, cfg, 2), cfg


def test_full_model_2d_shapes():
    model, _ = _tiny_model()
    x = torch.rand(2, 1, 64, 64)
    logits, alpha = model(x, boxes=torch.tensor([[[4.0, 4.0], [40.0, 30.0]]] * 2))
    assert logits.shape == (2, 1, 64, 64)
    assert alpha.shape == (2, 64, 2)  # 8x8 tokens at Swin stage 2


def test_the_mask_depends_on_the_box_and_not_without_a_prompt():
    """A box on another structure changes the mask; with prompt=none the box is ignored."""
    x = torch.rand(1, 1, 64, 64)
    box_a = torch.tensor([[[4.0, 4.0], [20.0, 20.0]]])
    box_b = torch.tensor([[[40.0, 36.0], [60.0, 58.0]]])
    model, _ = _tiny_model(prompt="box")
    model.eval()
    with torch.no_grad():
        a, _ = model(x, boxes=box_a)
        b, _ = model(x, boxes=box_b)
    assert (a - b).abs().max() > 1e-3
    blind, _ = _tiny_model(prompt="none")
    blind.eval()
    with torch.no_grad():
        a, _ = blind(x, boxes=box_a)
        b, _ = blind(x, boxes=box_b)
    assert torch.equal(a, b)


def test_amalgamation_training_leaves_the_experts_frozen():
    from celine.experiments.med_amalgamation.data import TaskData, synthetic_task
    from celine.experiments.med_amalgamation.train import train_amalgamated

    model, cfg = _tiny_model()
    cfg.epochs, cfg.batch_size = 1, 4
    tasks = []
    for k, name in enumerate(("bright_discs", "inverted_gamma")):
        x, y = synthetic_task(name, 4, 64, 2, seed=k)
        tasks.append(TaskData(name, x, y, x, y))
    experts = {k: v.clone() for k, v in model.experts.state_dict().items()}
    trained = {k: v.clone() for k, v in model.amalgamation.state_dict().items()}
    log = SimpleNamespace(info=lambda *a, **k: None)
    train_amalgamated(model, tasks, cfg, "cpu", seed=0, log=log)
    after = model.experts.state_dict()
    assert all(torch.equal(experts[k], after[k]) for k in experts)
    assert all(not p.requires_grad for p in model.experts.parameters())
    moved = model.amalgamation.state_dict()
    assert any(not torch.equal(trained[k], moved[k]) for k in trained if "gauss" not in k)


def test_boxes_from_masks_are_the_tight_bounding_box():
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 3:7, 5:12] = 1
    box = boxes_from_masks(mask)
    assert box.tolist() == [[[3.0, 5.0], [6.0, 11.0]]]
