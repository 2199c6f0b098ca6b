"""The built-in benchmark since issue 27: labels that conflict across tasks and follow shape or
size, not intensity, so the threshold sanity baseline cannot solve it (the first benchmark's
tasks it solved at Dice 1.000, test_headline.py's history)."""

import torch

from celine.experiments.med_amalgamation.config import MedAmalgamationTaskConfig
from celine.experiments.med_amalgamation.data import load_tasks
from celine.experiments.med_amalgamation.evaluate import predict, segmentation_scores
from celine.experiments.med_amalgamation.threshold import threshold_predictor


def _tasks():
    return {t.name: t for t in load_tasks(MedAmalgamationTaskConfig(n_train=32, n_test=32))}


def test_a_fitted_threshold_cannot_separate_what_a_shape_task_labels():
    for name, task in _tasks().items():
        pred = predict(threshold_predictor(task), task.test_x, "cpu")
        dice = segmentation_scores(pred, task.test_y)["dice"]
        assert dice < 0.8, (name, dice)  # it marks both shapes; the experts reach > .9 (README)


def test_the_same_structure_is_foreground_in_one_task_and_background_in_another():
    tasks = _tasks()
    for name in ("discs", "squares"):
        x, y = tasks[name].train_x, tasks[name].train_y
        bright = (x > 0.45) if name == "discs" else (x < 0.55)  # squares: inverted contrast
        # objects the task leaves unlabelled: a large share of what a threshold sees
        unlabelled = (bright & (y < 0.5)).sum() / bright.sum()
        assert unlabelled > 0.25, (name, float(unlabelled))
    empty = torch.cat([t.test_y for t in tasks.values()]).flatten(1).sum(1) == 0
    assert 0 < int(empty.sum()) < len(empty) // 3  # some empty-label images, scored
