"""mfdmc end to end through `celine run`, and its claims on planted data."""

import pytest
from celine_testing import run_in_process, runs_of

SMALL = ["task=mfdmc", "task.users=150", "task.items=100", "task.density=0.3"]


def test_default_method_runs_and_records_its_metrics_and_clusters(outputs, tmp_path):
    metrics = run_in_process(
        [*SMALL, "method.epochs=12", "method.discard_after=5"], tmp_path / "run"
    )
    for key in ("test/rmse", "test/ndcg_at_k", "nmi/users", "clusters/alive"):
        assert key in metrics
    (run,) = runs_of(outputs, "mfdmc")
    assert run.info.status == "FINISHED"
    assert (tmp_path / "run" / "tables" / "memberships.csv").is_file()
    assert (tmp_path / "run" / "plots" / "clusters_alive.png").is_file()


def test_dim_not_divisible_by_views_is_refused(outputs, tmp_path):
    from celine.api import ConfigError

    with pytest.raises(ConfigError, match="model.dim"):
        run_in_process([*SMALL, "model.dim=31"], tmp_path / "run")


def test_mfdmc_beats_biased_mf_and_recovers_the_planted_clusters(outputs, tmp_path):
    """The issue's claim on the default planted data, seed 0: RMSE at most biased MF's and far
    below the global mean; clusters recover the planted ones (NMI well above two-stage).
    About 25 s on 2 cores: kept in the default suite because it is the room's claim."""
    got = {
        m: run_in_process(["task=mfdmc", f"method={m}"], tmp_path / m)
        for m in ("mfdmc", "mf_biased", "mf_kmeans", "mf_global_mean")
    }
    assert got["mfdmc"]["test/rmse"] <= got["mf_biased"]["test/rmse"]
    assert got["mfdmc"]["test/rmse"] < got["mf_global_mean"]["test/rmse"] - 0.3
    for side in ("nmi/users", "nmi/items"):
        assert got["mfdmc"][side] > got["mf_kmeans"][side] + 0.15
