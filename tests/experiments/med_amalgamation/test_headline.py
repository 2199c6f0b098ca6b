"""The room's headline at a small size (issue 27): on the built-in shape tasks one intensity
threshold per task, fitted on the training split, stays well below an expert trained on the
same split with the room's recipe, so the benchmark leaves room for what experts know (on the
first benchmark the threshold scored Dice 1.000 and no amalgamation gain could be measured).
The 5-seed table (`celine reproduce task=med_amalgamation`) is in the README."""

import pytest
import torch

from celine.experiments.med_amalgamation.config import DynUNetConfig, MedAmalgamationTaskConfig
from celine.experiments.med_amalgamation.data import load_tasks
from celine.experiments.med_amalgamation.evaluate import (
    predict,
    segmentation_scores,
    softmax_predictor,
)
from celine.experiments.med_amalgamation.nets import build_dynunet
from celine.experiments.med_amalgamation.threshold import threshold_predictor
from celine.experiments.med_amalgamation.train import train_expert


def _threshold_and_expert(task, recipe, seed):
    threshold = segmentation_scores(
        predict(threshold_predictor(task), task.test_x, "cpu"), task.test_y
    )["dice"]
    torch.manual_seed(seed)
    net = build_dynunet(recipe, 2)
    train_expert(net, task, recipe, "cpu", seed=seed)
    expert = segmentation_scores(predict(softmax_predictor(net), task.test_x, "cpu"), task.test_y)[
        "dice"
    ]
    return threshold, expert


def test_headline_threshold_stays_below_the_expert_on_the_disc_task():
    """Small size (32 training images, 100 epochs of 4 steps): the expert of `discs` must beat
    the threshold by 0.15 Dice (README, full size: expert .90, threshold .55)."""
    torch.set_num_threads(1)
    (task,) = load_tasks(MedAmalgamationTaskConfig(tasks=["discs"], n_train=32, n_test=32))
    threshold, expert = _threshold_and_expert(task, DynUNetConfig(epochs=100), seed=0)
    assert expert > threshold + 0.15, (expert, threshold)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "discs",
        pytest.param(
            "squares",
            marks=pytest.mark.xfail(
                strict=True,
                reason="issue 27, open: at 50 epochs the squares expert (inverted contrast) "
                "stays on the plateau where it marks every object (Dice .57, threshold .61)",
            ),
        ),
        "large_objects",
    ],
)
def test_headline_threshold_stays_below_the_experts_at_readme_size(name):
    """The README's size (96 training images per task, the default 50-epoch recipe, expert
    seed 0 as in the headline sweep): each expert beats its task's threshold by 0.15 Dice."""
    torch.set_num_threads(1)
    tasks = {t.name: t for t in load_tasks(MedAmalgamationTaskConfig())}
    k = list(tasks).index(name)
    threshold, expert = _threshold_and_expert(tasks[name], DynUNetConfig(), seed=k)
    assert expert > threshold + 0.15, (name, expert, threshold)
