"""Each CKA loss is zero or minimal where it should be, and falls when same-class points move
together; the union label space maps teacher classes to the right offsets."""

import math

import pytest
import torch
import torch.nn.functional as F

from celine.experiments.cka import losses
from celine.experiments.cka.task import Union


def _points(seed=0, n=24, d=8, classes=4):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    h = F.normalize(torch.randn(n, d, generator=g), dim=1)
    return h, labels


def _tighten(h, labels, amount):
    """Move each point `amount` of the way to its class mean, renormalised."""
    means = torch.stack([h[labels == c].mean(0) for c in range(int(labels.max()) + 1)])
    return F.normalize((1 - amount) * h + amount * means[labels], dim=1)


def test_alignment_is_zero_for_identical_spaces_and_positive_otherwise():
    h, _ = _points()
    assert losses.sample_alignment(h, h.clone(), 0.5).item() == pytest.approx(0.0, abs=1e-6)
    # a rotation keeps every dot product: the sample-level distributions are identical
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    assert losses.sample_alignment(h, h @ q, 0.5).item() == pytest.approx(0.0, abs=1e-5)
    other, _ = _points(seed=3)
    assert losses.sample_alignment(h, other, 0.5).item() > 0.05


def test_alignment_sends_no_gradient_to_the_teacher_side():
    h_t, _ = _points()
    h_s, _ = _points(seed=2)
    h_t.requires_grad_(True)
    h_s.requires_grad_(True)
    losses.sample_alignment(h_t, h_s, 0.5).backward()
    assert h_t.grad is None and h_s.grad is not None


def test_intra_model_contrastive_falls_as_same_class_points_move_together():
    h, labels = _points()
    values = [
        losses.intra_model_contrastive(_tighten(h, labels, a), labels, 0.1).item()
        for a in (0.0, 0.5, 0.9, 1.0)
    ]
    assert values == sorted(values, reverse=True) and values[0] - values[-1] > 1.0


def test_intra_model_contrastive_hand_value_on_four_vectors():
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    tau = 0.5
    # anchor 0: candidates 1 (sim 1), 2 and 3 (sim 0); its one positive is 1
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 2.0))
    assert losses.intra_model_contrastive(h, labels, tau).item() == pytest.approx(expected)


def test_inter_model_contrastive_falls_as_the_student_joins_the_teacher_classes():
    h_t, labels = _points()
    h_s, _ = _points(seed=5)
    means = torch.stack([h_t[labels == c].mean(0) for c in range(4)])
    values = []
    for a in (0.0, 0.5, 1.0):
        moved = F.normalize((1 - a) * h_s + a * means[labels], dim=1)
        values.append(losses.inter_model_contrastive(moved, h_t, labels, 0.1).item())
    assert values == sorted(values, reverse=True) and values[0] - values[-1] > 1.0
    only_class_0 = labels == 0
    masked = losses.inter_model_contrastive(h_s, h_t, labels, 0.1, anchors=only_class_0)
    assert torch.isfinite(masked)


def test_kd_is_zero_when_the_student_copies_the_concatenated_teachers():
    z = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    assert losses.soft_target_kd(z.clone(), z, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.soft_target_kd(torch.zeros(16, 10), z, 4.0).item() > 0.0


def test_mmd_is_zero_on_one_sample_and_grows_with_a_shift():
    a = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    sigmas = [0.1, 1.0, 2.0]
    assert losses.multi_kernel_mmd(a, a, sigmas).item() == pytest.approx(0.0, abs=1e-6)
    near = losses.multi_kernel_mmd(a, a + 0.1, sigmas).item()
    far = losses.multi_kernel_mmd(a, a + 1.0, sigmas).item()
    assert 0.0 < near < far


def test_union_label_space_offsets_and_owners():
    u = Union([[3, 1], [0, 2, 4]])
    assert u.offsets == [0, 2] and u.num_classes == 5
    assert u.task_of(torch.tensor([0, 1, 2, 3, 4])).tolist() == [0, 0, 1, 1, 1]
    from celine.vision.datasets import ImageSet

    data = ImageSet(torch.zeros(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 4, 5]))
    relabelled = u.relabel(data)
    # dataset class 3 -> union 0, 1 -> 1, 0 -> 2, 2 -> 3, 4 -> 4; class 5 is no teacher's
    assert relabelled.y.tolist() == [2, 1, 3, 0, 4]
