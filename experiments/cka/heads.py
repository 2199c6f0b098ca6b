"""Trainable blocks that live beside the student: CKA's projection heads into the common
representation space, and CFL's common-feature block."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """MLP from one model's penultimate features to the common space, L2-normalised."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, dim_out),
        )  # fmt: skip

    def forward(self, f: Tensor) -> Tensor:
        return F.normalize(self.net(f), dim=1)


class CommonSpace(nn.Module):
    """One head for the student and one per (frozen) teacher: the shared space of CKA."""

    def __init__(self, student_dim: int, teacher_dims: list[int], hidden: int, dim: int) -> None:
        super().__init__()
        self.student = ProjectionHead(student_dim, hidden, dim)
        self.teachers = nn.ModuleList(ProjectionHead(d, hidden, dim) for d in teacher_dims)


class CommonFeatureBlock(nn.Module):
    """CFL (Luo et al., IJCAI 2019), fully-connected variant: per-model align layers into a
    hidden width, one extractor shared by student and teachers, and per-teacher decoders that
    reconstruct each teacher's features from its hidden code."""

    def __init__(self, student_dim: int, teacher_dims: list[int], hidden: int) -> None:
        super().__init__()
        self.align_s = nn.Sequential(nn.Linear(student_dim, hidden), nn.ReLU())
        self.align_t = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), nn.ReLU()) for d in teacher_dims
        )
        self.extractor = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.decoders = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, d), nn.ReLU(), nn.Linear(d, d)) for d in teacher_dims
        )

    def forward(self, fs: Tensor, fts: list[Tensor]):
        hs = self.extractor(self.align_s(fs))
        hts = [self.extractor(align(f)) for align, f in zip(self.align_t, fts, strict=True)]
        recon = [dec(h) for dec, h in zip(self.decoders, hts, strict=True)]
        return hs, hts, recon
