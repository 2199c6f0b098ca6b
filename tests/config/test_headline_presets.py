"""Every conf/experiment/<task>_headline.yaml reads as a `celine reproduce` preset whose
baseline, metrics and swept methods exist for its task; a bad preset fails naming the key."""

import pytest

from celine import headline, registry
from celine.errors import ConfigError


@pytest.mark.parametrize("task", headline.available())
def test_headline_preset_names_its_tasks_methods_and_metrics(task):
    registry.discover()
    p = headline.load(task)
    spec = registry.TASKS[task]
    assert p.baseline in spec.methods
    assert set(p.metrics) <= {m.name for m in spec.metrics}
    methods = p.sweep["method"].split(",")
    assert p.baseline in methods and set(methods) <= set(spec.methods)
    assert p.expected_minutes and p.expected_minutes > 0


def test_a_bad_preset_names_the_file_and_the_key(tmp_path):
    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "x_headline.yaml").write_text(
        "hydra:\n  sweeper:\n    params:\n      method: a,b\n"
        "reproduce:\n  baseline: a\n  metrics: [m]\n  seed_key: model.seed\n"
    )
    with pytest.raises(ConfigError, match=r"x_headline.yaml: reproduce.seed_key"):
        headline.load("x", tmp_path)
    (folder / "x_headline.yaml").write_text("reproduce:\n  baseline: a\n  metric: [m]\n")
    with pytest.raises(ConfigError, match=r"reproduce.metric"):
        headline.load("x", tmp_path)
    with pytest.raises(ConfigError, match="task='nope'"):
        headline.load("nope", tmp_path)
