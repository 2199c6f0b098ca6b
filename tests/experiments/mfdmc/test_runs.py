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
