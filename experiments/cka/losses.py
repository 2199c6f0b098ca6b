"""The losses of CKA and of its baselines, each a plain function of tensors.

Shapes: `h*` are L2-normalised embeddings [B, d] in the common space, `labels` are the
pseudo-labels [B] (argmax of the teachers' concatenated logits; never ground truth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_target_kd(student_logits: Tensor, teacher_logits: Tensor, T: float) -> Tensor:
    """Task-level amalgamation: T^2 * KL(softmax(z/T) || softmax(s/T)), batch mean. T^2 keeps
    the gradient scale independent of T (Hinton et al.)."""
    target = F.log_softmax(teacher_logits / T, dim=1)
    pred = F.log_softmax(student_logits / T, dim=1)
    return F.kl_div(pred, target, reduction="batchmean", log_target=True) * T * T


def _positive_log_likelihood(logits: Tensor, positives: Tensor, valid: Tensor) -> Tensor:
    """Mean over anchors (rows) with at least one positive of the mean log-probability of
    their positives under a softmax over `valid` candidates."""
    logits = logits.masked_fill(~valid, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = positives & valid
    count = positives.sum(1)
    has = count > 0
    if not bool(has.any()):
        return logits.new_zeros(())
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(1)[has] / count[has]
    return -per_anchor.mean()


def intra_model_contrastive(h: Tensor, labels: Tensor, tau: float) -> Tensor:
    """Supervised-contrastive loss inside one model's space (Khosla et al., 2020): every other
    sample of the same pseudo-class is a positive, every other sample a candidate."""
    n = len(h)
    not_self = ~torch.eye(n, dtype=torch.bool, device=h.device)
    same = labels[:, None] == labels[None, :]
    return _positive_log_likelihood(h @ h.T / tau, same & not_self, not_self)


def inter_model_contrastive(
    h_anchor: Tensor, h_other: Tensor, labels: Tensor, tau: float, anchors: Tensor | None = None
) -> Tensor:
    """Contrast across two models' spaces: anchor i (one model) against every sample j of the
    other model; positives are the samples of i's pseudo-class, the same image included.
    `anchors` (bool [B]) limits which rows count (e.g. the pseudo-classes a teacher owns)."""
    same = labels[:, None] == labels[None, :]
    valid = torch.ones_like(same)
    if anchors is not None:
        same = same & anchors[:, None]
    return _positive_log_likelihood(h_anchor @ h_other.T / tau, same, valid)


def similarity_distribution(h: Tensor, tau: float) -> Tensor:
    """Row i: the log of softmax_j(h_i . h_j / tau) over the other samples j != i (the diagonal
    is -inf): how one sample relates to the rest of the batch in one model's space."""
    n = len(h)
    logits = (h @ h.T / tau).masked_fill(torch.eye(n, dtype=torch.bool, device=h.device), -1e9)
    return F.log_softmax(logits, dim=1)


def sample_alignment(h_teacher: Tensor, h_student: Tensor, tau: float) -> Tensor:
    """Alignment of the sample-level distributions: mean_i KL(P_teacher(i,.) || P_student(i,.)),
    zero when the two spaces relate the batch's samples identically. The teacher's side is the
    target (no gradient)."""
    target = similarity_distribution(h_teacher.detach(), tau)
    pred = similarity_distribution(h_student, tau)
    off = ~torch.eye(len(h_student), dtype=torch.bool, device=h_student.device)
    kl = (target.exp() * (target - pred)).masked_fill(~off, 0.0).sum(1)
    return kl.mean()


def multi_kernel_mmd(a: Tensor, b: Tensor, sigmas: list[float]) -> Tensor:
    """Squared maximum mean discrepancy between two samples with a sum of Gaussian kernels
    exp(-||x - y||^2 / (2 sigma)) (the kernel family of CFL's code)."""
    x = torch.cat([a, b])
    d2 = torch.cdist(x, x).pow(2)
    k = sum(torch.exp(-d2 / (2.0 * s)) for s in sigmas)
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2.0 * k[:n, n:].mean()
