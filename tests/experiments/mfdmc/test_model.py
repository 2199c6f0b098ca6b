"""MFDMC's membership weights and dynamic discarding."""

import pytest
import torch

from celine.experiments.mfdmc.models import MFDMC, ClusterViews


@pytest.mark.parametrize("assignment", ["embedding", "logits"])
def test_weights_per_entity_and_view_sum_to_one(assignment):
    torch.manual_seed(0)
    side = ClusterViews(50, views=3, clusters=5, view_dim=4, init_std=0.5, assignment=assignment)
    side.alive[1, 2] = False
    for tau in (1.0, 0.1):
        side.tau = tau
        w = side.weights()
        assert w.shape == (50, 3, 5)
        torch.testing.assert_close(w.sum(-1), torch.ones(50, 3))
        assert (w[:, 1, 2] == 0).all()


def test_discarded_clusters_get_zero_weight_and_never_come_back():
    torch.manual_seed(0)
    model = MFDMC(
        40,
        30,
        dim=8,
        init_std=0.3,
        mean=3.0,
        views=2,
        clusters=6,
        entropy_weight=0.01,
        separation_weight=0.01,
    )
    side = model.users
    # make view 0's clusters 4 and 5 unused: every entity sits near cluster 0
    with torch.no_grad():
        side.centers[0, 4:] += 10.0
        side.embed[:, 0] = side.centers[0, 0]
    assert side.discard(min_usage=0.5, max_cosine=0.999, min_clusters=2) >= 2
    gone = ~side.alive.clone()
    assert gone[0, 4] and gone[0, 5]
    # training pushes the embeddings right onto the discarded centres: still exactly zero weight
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    u = torch.arange(40).repeat(3)
    i = torch.randint(0, 30, (120,))
    for _ in range(5):
        with torch.no_grad():
            side.embed[:, 0] = side.centers[0, 4]
        loss = ((model(u, i) - 4.0) ** 2).mean() + model.extra_loss(u, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
        side.discard(min_usage=0.5, max_cosine=0.999, min_clusters=2)
        assert (side.weights()[:, gone] == 0).all()
        assert not (side.alive & gone).any()  # the mask only loses entries


def test_discarding_keeps_min_clusters():
    torch.manual_seed(0)
    side = ClusterViews(30, views=1, clusters=4, view_dim=2, init_std=0.1)
    with torch.no_grad():
        side.embed[:] = side.centers[0, 0]
        side.centers[0, 1:] += 50.0
    side.discard(min_usage=1.0, max_cosine=1.0, min_clusters=2)
    assert int(side.alive.sum()) == 2


def test_one_cluster_per_view_degenerates_to_biases_plus_a_constant():
    """With K=1 every entity has the same representation: the model is biases + a constant."""
    model = MFDMC(
        10,
        8,
        dim=4,
        init_std=0.5,
        mean=3.0,
        views=2,
        clusters=1,
        entropy_weight=0.0,
        separation_weight=0.0,
    )
    reps = model.user_factors(torch.arange(10))
    torch.testing.assert_close(reps, reps[:1].expand_as(reps))
