"""After training, the mask follows the box: two discs per image, the label is the one inside
the box, and at test time a box on the other disc moves the mask there (slow: ~1-2 min CPU)."""

import numpy as np
import pytest
import torch

from celine.experiments.med_amalgamation.config import KA2ERConfig, SwinUNETRConfig
from celine.experiments.med_amalgamation.data import boxes_from_masks
from celine.experiments.med_amalgamation.model import AmalgamatedSegmenter
from celine.experiments.med_amalgamation.nets import build_swinunetr


def _two_discs(n, rs):
    yy, xx = np.mgrid[:64, :64]
    images, first, second = [], [], []
    for _ in range(n):
        while True:
            c = rs.randint(10, 54, size=(2, 2))
            if np.linalg.norm(c[0] - c[1]) > 22:
                break
        discs = [((yy - cy) ** 2 + (xx - cx) ** 2 <= 8**2) for cy, cx in c]
        img = np.clip(discs[0] + discs[1] + rs.rand(64, 64) * 0.3, 0, 1)
        images.append(img)
        first.append(discs[0])
        second.append(discs[1])
    t = lambda a: torch.tensor(np.stack(a), dtype=torch.float32)[:, None]  # noqa: E731
    return t(images), t(first), t(second)


@pytest.mark.slow
def test_a_box_on_the_other_disc_moves_the_mask():
    from monai.losses import DiceCELoss

    torch.manual_seed(0)
    rs = np.random.RandomState(0)
    cfg = KA2ERConfig(fusion="none", hidden_size=32, decoder_depth=1, prompt="box", dense_box=True)
    target = build_swinunetr(SwinUNETRConfig(), 2)
    model = AmalgamatedSegmenter(target, [], cfg, 2)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=2e-3)
    loss_fn = DiceCELoss(sigmoid=True)
    for _ in range(150):
        x, a, b = _two_discs(8, rs)
        pick = torch.rand(8, 1, 1, 1) < 0.5
        y = torch.where(pick, a, b)
        logits, _ = model(x, boxes=boxes_from_masks(y, jitter=0.03))
        loss = loss_fn(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, a, b = _two_discs(16, rs)
    with torch.no_grad():
        on_a = torch.sigmoid(model(x, boxes=boxes_from_masks(a))[0]) > 0.5
        on_b = torch.sigmoid(model(x, boxes=boxes_from_masks(b))[0]) > 0.5

    def dice(p, g):
        return float(2 * (p * g).sum() / (p.sum() + g.sum() + 1e-6))

    print("DICE", dice(on_a, a), dice(on_b, b), dice(on_a, b), dice(on_b, a))
    # an untrained decoder segments both discs whatever the box: equal overlaps
    assert dice(on_a, a) > dice(on_a, b) + 0.3
    assert dice(on_b, b) > dice(on_b, a) + 0.3
