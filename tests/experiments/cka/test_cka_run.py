"""`celine run task=cka` end to end with tiny settings, the baselines' runs, and early errors."""

import pytest
from celine_testing import artifact_paths, compose, run_in_process, runs_of

from celine.errors import ConfigError

TASK = ["task=cka", "task.teacher_epochs=2", "task.teacher_width=0.5", "model.width=0.5",
        "task.plot_points=60"]  # fmt: skip
TINY = [*TASK, "method.epochs=2"]


def test_cka_run_finishes_with_its_metrics_tables_and_plots(outputs, tmp_path):
    metrics = run_in_process(TINY, tmp_path / "run")
    for key in ("test/union_acc", "test/task0_acc", "test/task1_acc", "teachers/mean_task_acc",
                "teacher0/task_acc", "reference/concat_teachers_union_acc"):  # fmt: skip
        assert 0.0 <= metrics[key] <= 1.0, key
    (run,) = runs_of(outputs, "cka")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/union_acc"] == pytest.approx(metrics["test/union_acc"])
    arts = artifact_paths(outputs, run.info.run_id)
    assert {"plots/representation.png", "plots/curves.png", "tables/accuracy.csv"} <= arts
    # a teacher cache keyed by its config: a second method reuses it (no retraining)
    cached = list((outputs / "models" / "cka_teachers").glob("*.pt"))
    assert len(cached) == 2
    concat = run_in_process([*TASK, "method=cka_concat_teachers"], tmp_path / "concat")
    assert concat["test/union_acc"] == pytest.approx(metrics["reference/concat_teachers_union_acc"])
    assert len(list((outputs / "models" / "cka_teachers").glob("*.pt"))) == 2
    # the teacher of a task is perfect-ish on its own task, and at most its share of the union
    assert metrics["teacher0/union_acc"] <= 0.51


@pytest.mark.parametrize(
    "override, key",
    [
        ("task.splits=[[0,1,2],[2,3]]", "task.splits"),
        ("task.splits=[[0,1,2,3,4,5,6,7,8,9]]", "task.splits"),
        ("task.data=cifar10", "task.data_root"),
        ("task.split_by=coarse", "task.split_by"),
        ("method.tau=0", "method.tau"),
        ("method.inter_pairs=some", "method.inter_pairs"),
    ],
)
def test_bad_settings_are_refused_early_naming_the_key(override, key, tmp_path):
    from celine.validation import plan

    with pytest.raises(ConfigError) as err:
        plan(compose(["task=cka", override]))
    assert err.value.key == key
