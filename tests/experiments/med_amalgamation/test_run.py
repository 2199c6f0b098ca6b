"""med_amalgamation end to end through the runner, on tiny settings; config errors are early."""

import pytest
from celine_testing import compose, run_in_process, runs_of

from celine.api import ConfigError

TINY = [
    "task=med_amalgamation", "task.tasks=[bright_discs,inverted_gamma]", "task.n_train=8",
    "task.n_test=4", "task.expert.epochs=1", "task.expert.filters=[4,8,16,32]",
]  # fmt: skip


def test_ka2er_then_med_expert_reuses_the_cached_experts(outputs, tmp_path):
    import pandas as pd

    metrics = run_in_process([*TINY, "method.epochs=1", "method.hidden_size=32"], tmp_path / "a")
    assert 0.0 <= metrics["dice/mean"] <= 1.0 and metrics["hd95/mean"] >= 0.0
    assert metrics["experts/frozen"] == 1.0
    assert {"dice/bright_discs", "dice/inverted_gamma", "alpha/own_expert"} <= set(metrics)
    (run,) = runs_of(outputs, "med_amalgamation")
    assert run.info.status == "FINISHED"
    assert (tmp_path / "a" / "plots" / "examples.png").is_file()
    weights = pd.read_csv(tmp_path / "a" / "tables" / "expert_weights.csv")
    assert weights[["bright_discs", "inverted_gamma"]].sum(axis=1).tolist() == pytest.approx([1, 1])

    expert = [*TINY, "method=med_expert", "model=dynunet", "model.epochs=1",
              "model.filters=[4,8,16,32]"]  # fmt: skip
    run_in_process(expert, tmp_path / "b")
    info = pd.read_csv(tmp_path / "b" / "tables" / "experts.csv")
    assert info["cached"].all()  # the same recipe: ka2er's experts, not retrained


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("task.image_size=48", "task.image_size"),
        ("model.feature_size=16", "model.feature_size"),
        ("method.fusion=concat", "method.fusion"),
        ("task.tasks=[nope]", "task.tasks[]"),
        ("method=med_expert", "model"),  # med_expert trains DynUNets: model=dynunet
        ("method.eval_prompt=gt", "method.eval_prompt"),
        ("task.test_size=32", "task.test_size"),
        ("task.intensity_range=[5,1]", "task.intensity_range"),
        ("task.pixdim=[1.0]", "task.pixdim"),
        ("task.test_slice=first", "task.test_slice"),
    ],
)
def test_bad_config_fails_early_naming_the_key(override, key):
    from celine import validation

    with pytest.raises(ConfigError) as err:
        validation.plan(compose(["task=med_amalgamation", override]))
    assert err.value.key == key
