from celine.llm.builders import append_history, read_history


def test_history_keeps_the_last_value_of_a_step_rerun_after_a_resume(tmp_path):
    append_history(tmp_path, 10, {"train/loss": 5.0})
    append_history(tmp_path, 20, {"train/loss": 4.0, "val/perplexity": 90.0})
    # interrupted after step 20, resumed from the state saved at step 10: step 20 runs again
    append_history(tmp_path, 20, {"train/loss": 3.9, "val/perplexity": 88.0})
    rows = read_history(tmp_path)
    assert rows == [
        {"step": 10, "metric": "train/loss", "value": 5.0},
        {"step": 20, "metric": "train/loss", "value": 3.9},
        {"step": 20, "metric": "val/perplexity", "value": 88.0},
    ]


def test_no_history_is_an_empty_list(tmp_path):
    assert read_history(tmp_path / "missing") == []
