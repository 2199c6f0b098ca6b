"""The two factorization models: MFDMC and biased MF (the baseline it extends)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BiasedMF(nn.Module):
    """r(u, i) = mu + b_u + b_i + <p_u, q_i>."""

    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float, mean: float):
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(float(mean)))
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.P = nn.Parameter(torch.randn(n_users, dim) * init_std)
        self.Q = nn.Parameter(torch.randn(n_items, dim) * init_std)

    def user_factors(self, users: torch.Tensor) -> torch.Tensor:
        return self.P[users]

    def item_factors(self, items: torch.Tensor) -> torch.Tensor:
        return self.Q[items]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors(users) * self.item_factors(items)).sum(-1)
        return self.mu + self.user_bias[users] + self.item_bias[items] + dot

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        every = torch.arange(self.item_bias.numel(), device=users.device)
        return (
            self.mu
            + self.user_bias[users, None]
            + self.item_bias[None]
            + self.user_factors(users) @ self.item_factors(every).T
        )

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """L2 on the rows a minibatch touches (the usual SGD-MF regulariser)."""
        return (
            self.user_factors(users).pow(2).sum(-1)
            + self.item_factors(items).pow(2).sum(-1)
            + self.user_bias[users] ** 2
            + self.item_bias[items] ** 2
        ).mean()

    def extra_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), device=self.mu.device)


class ClusterViews(nn.Module):
    """One side (users or items): per view, learnable clusters and each entity's membership
    logits; the view representation is the membership-weighted sum of live clusters."""

    def __init__(
        self,
        n: int,
        views: int,
        clusters: int,
        view_dim: int,
        init_std: float,
        assignment: str = "embedding",
    ):
        super().__init__()
        self.assignment = assignment
        self.centers = nn.Parameter(torch.randn(views, clusters, view_dim) * init_std)
        if assignment == "embedding":
            # each entity has a point per view; its memberships are a soft k-means assignment
            # (negative squared distance to each cluster), so the weights follow the geometry
            self.embed = nn.Parameter(torch.randn(n, views, view_dim) * init_std)
        else:  # free membership logits per entity
            self.logits = nn.Parameter(torch.randn(n, views, clusters))
        # live-cluster mask; a buffer so it is saved with the model but never trained
        self.register_buffer("alive", torch.ones(views, clusters, dtype=torch.bool))
        self.tau = 1.0

    @property
    def size(self) -> int:
        return (self.embed if self.assignment == "embedding" else self.logits).shape[0]

    def membership_logits(self, idx: torch.Tensor | None) -> torch.Tensor:
        if self.assignment == "embedding":
            e = self.embed if idx is None else self.embed[idx]
            return -(e[:, :, None, :] - self.centers[None]).pow(2).sum(-1)
        return self.logits if idx is None else self.logits[idx]

    def weights(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.membership_logits(idx)
        # softmax((a + log m) / tau): log 0 = -inf gives a discarded cluster exactly zero weight
        return F.softmax(logits.masked_fill(~self.alive, -math.inf) / self.tau, dim=-1)

    def represent(self, idx: torch.Tensor) -> torch.Tensor:
        w = self.weights(idx)
        return torch.einsum("nvk,vkd->nvd", w, self.centers).flatten(1)

    def entropy(self, idx: torch.Tensor) -> torch.Tensor:
        w = self.weights(idx)
        return -(w * torch.log(w.clamp_min(1e-12))).sum(-1).mean()

    def separation(self) -> torch.Tensor:
        """Mean squared cosine similarity between distinct live clusters of a view."""
        c = F.normalize(self.centers, dim=-1)
        cos = torch.einsum("vkd,vjd->vkj", c, c)
        live = self.alive[:, :, None] & self.alive[:, None, :]
        live = live & ~torch.eye(cos.shape[-1], dtype=torch.bool, device=cos.device)
        return (cos.pow(2) * live).sum() / live.sum().clamp_min(1)

    @torch.no_grad()
    def discard(self, min_usage: float, max_cosine: float, min_clusters: int) -> int:
        """Drop clusters few entities use, and the less-used of near-duplicate pairs.
        A dropped cluster never returns (the mask only ever loses entries). Returns the count."""
        usage = self.weights().sum(0)  # (views, clusters): soft count of members
        n = self.size
        dropped = 0
        for v in range(self.alive.shape[0]):
            live = self.alive[v].nonzero().flatten().tolist()
            c = F.normalize(self.centers[v], dim=-1)
            bad = {k for k in live if usage[v, k] < min_usage * n / len(live)}
            for a in live:
                for b in live:
                    if a < b and float(c[a] @ c[b]) > max_cosine:
                        bad.add(a if usage[v, a] < usage[v, b] else b)
            for k in sorted(bad, key=lambda k: float(usage[v, k])):
                if int(self.alive[v].sum()) <= min_clusters:
                    break
                self.alive[v, k] = False
                dropped += 1
        return dropped

    def assignments(self) -> list:
        """Hard membership per view (argmax of the weights), as numpy label arrays."""
        w = self.weights()
        return [w[:, v].argmax(-1).cpu().numpy() for v in range(w.shape[1])]


class MFDMC(BiasedMF):
    """Biased MF whose user and item factors are built from per-view cluster memberships."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        init_std: float,
        mean: float,
        *,
        views: int,
        clusters: int,
        entropy_weight: float,
        separation_weight: float,
        assignment: str = "embedding",
    ):
        super().__init__(n_users, n_items, 0, init_std, mean)
        view_dim = dim // views
        self.users = ClusterViews(n_users, views, clusters, view_dim, init_std, assignment)
        self.items = ClusterViews(n_items, views, clusters, view_dim, init_std, assignment)
        self.entropy_weight = entropy_weight
        self.separation_weight = separation_weight

    def user_factors(self, users: torch.Tensor) -> torch.Tensor:
        return self.users.represent(users)

    def item_factors(self, items: torch.Tensor) -> torch.Tensor:
        return self.items.represent(items)

    def set_tau(self, tau: float) -> None:
        self.users.tau = self.items.tau = tau

    def extra_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        entropy = self.users.entropy(users) + self.items.entropy(items)
        separation = self.users.separation() + self.items.separation()
        return self.entropy_weight * entropy + self.separation_weight * separation

    def alive(self) -> tuple[int, int]:
        return int(self.users.alive.sum()), int(self.items.alive.sum())
