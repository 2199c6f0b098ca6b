import os

from celine.commands import ui


def test_ui_serves_the_projects_store(monkeypatch, outputs):
    seen = {}
    monkeypatch.setattr(os, "execv", lambda exe, argv: seen.update(exe=exe, argv=argv))
    ui.main(["--port", "5123"])
    argv = seen["argv"]
    assert argv[1:4] == ["-m", "mlflow", "ui"]
    assert argv[argv.index("--backend-store-uri") + 1] == f"sqlite:///{outputs / 'mlflow.db'}"
    assert argv[argv.index("--port") + 1] == "5123"


def test_compare_table_keeps_differing_params_and_declared_metrics():
    import pandas as pd

    from celine.commands.compare import comparison_table

    runs = pd.DataFrame(
        {
            "run_id": ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"],
            "status": ["FINISHED"] * 3,
            "start_time": pd.to_datetime(["2026-01-01"] * 3),
            "tags.celine.role": [None, None, "sweep"],
            "tags.celine.method": ["m1", "m2", None],
            "params.method.lr": ["0.1", "0.2", None],
            "params.paths.outputs": ["/a", "/b", None],  # noise, never a column
            "params.model.size": ["s", "s", None],  # same in every run: not a column
            "metrics.acc": [0.5, 0.7, None],
            "metrics.other": [1.0, 2.0, None],
        }
    )
    table = comparison_table(runs, ["acc"])
    assert len(table) == 2  # the sweep's parent run is not a row
    assert list(table["method"]) == ["m1", "m2"] and list(table["acc"]) == [0.5, 0.7]
    assert "method.lr" in table and "paths.outputs" not in table and "model.size" not in table
    assert "other" not in table
