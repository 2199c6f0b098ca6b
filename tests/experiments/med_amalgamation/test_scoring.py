"""Scoring that counts what the first benchmark hid (issue 27): images with an empty label are
scored (a false positive there costs a whole image's Dice), and test prompts need not come
from the ground truth."""

import pytest
import torch

from celine.experiments.med_amalgamation.evaluate import (
    amalgamated_predictor,
    label_source,
    predict,
    segmentation_scores,
)


def _masks():
    label = torch.zeros(2, 1, 16, 16)
    label[0, 0, 4:8, 4:8] = 1  # image 1 has no foreground
    return label


def test_an_empty_label_is_scored_one_when_nothing_is_predicted_zero_when_something_is():
    label = _masks()
    clean = segmentation_scores(label.clone(), label)
    assert clean["dice"] == pytest.approx(1.0) and clean["fp_empty"] == 0.0
    noisy = label.clone()
    noisy[1, 0, 0, 0] = 1  # one false-positive pixel on the empty image
    scores = segmentation_scores(noisy, label)
    assert scores["dice"] == pytest.approx(0.5) and scores["fp_empty"] == 1.0
    assert scores["hd95"] == pytest.approx(clean["hd95"])  # HD95 over the foreground images only


def test_prompts_come_from_the_source_given_and_are_cut_to_the_sliding_window():
    seen = []

    class Model(torch.nn.Module):
        def forward(self, x, boxes=None, points=None):
            seen.append(boxes.clone())
            return torch.zeros(x.shape[0], 1, *x.shape[2:]), None

    label = torch.zeros(1, 1, 64, 64)
    label[0, 0, 40:50, 10:20] = 1
    fn = amalgamated_predictor(Model(), "box", label_source(label))
    predict(fn, torch.zeros(1, 1, 64, 64), "cpu")
    assert seen[-1][0].tolist() == [[40, 10], [49, 19]]
    seen.clear()
    predict(fn, torch.zeros(1, 1, 64, 64), "cpu", roi=(32, 32))  # 3 x 3 overlapping windows
    boxes = [b[0].tolist() for b in seen]
    # the window at rows 32-63, columns 0-31 holds the object at 8-17 x 10-19 in its own frame;
    # windows without it get the whole window as the box
    assert [[8, 10], [17, 19]] in boxes and [[0, 0], [31, 31]] in boxes
