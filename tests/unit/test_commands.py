import os

import pytest

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
            "params.reproduce.baseline": ["m2", None, None],  # run by `celine reproduce`: noise
            "params.model.size": ["s", "s", None],  # same in every run: not a column
            "metrics.acc": [0.5, 0.7, None],
            "metrics.other": [1.0, 2.0, None],
        }
    )
    table = comparison_table(runs, ["acc"])
    assert len(table) == 2  # the sweep's parent run is not a row
    assert list(table["method"]) == ["m1", "m2"] and list(table["acc"]) == [0.5, 0.7]
    assert "method.lr" in table and "paths.outputs" not in table and "model.size" not in table
    assert "reproduce.baseline" not in table
    assert "other" not in table


def test_compare_drops_method_specific_constants_and_summarises_over_seeds():
    import pandas as pd

    from celine import evidence
    from celine.commands.compare import comparison_table

    runs = pd.DataFrame(
        {
            "run_id": [f"{i}" * 10 for i in range(5)],
            "status": ["FINISHED"] * 5,
            "start_time": pd.to_datetime(["2026-01-01"] * 5),
            "tags.celine.method": ["a", "a", "b", "b", "b"],
            "tags.celine.seed": ["0", "1", "0", "1", "0"],
            "params.method.k": ["4", "4", None, None, None],  # only method a has it, constant
            "params.method.bits": [None, None, "2", "2", "3"],  # varies within method b
            "metrics.acc": [0.5, 0.7, 0.1, 0.3, 0.9],
        }
    )
    table = comparison_table(runs, ["acc"])
    assert "method.k" not in table and "method.bits" in table
    ev = evidence.summarise(table.drop(columns=["run_name"]), ["acc"])
    summary = ev.summary.set_index(["method", "method.bits"])
    assert summary.loc[("a", "-"), "acc"] == pytest.approx(0.6)
    assert summary.loc[("a", "-"), "n"] == 2
    assert summary.loc[("b", "2"), "acc"] == pytest.approx(0.2)
    assert summary.loc[("b", "3"), "n"] == 1 and summary.loc[("b", "3"), "acc"] == 0.9
