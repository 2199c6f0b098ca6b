"""The threshold sanity baseline (what it says about the built-in tasks: test_headline.py)."""

import pytest
import torch

from celine.experiments.med_amalgamation.threshold import fit_threshold, threshold_predictor


def test_fitted_threshold_finds_the_side_and_level_that_separate_the_classes():
    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(4, 1, 32, 32, generator=gen) > 0.7).float()
    x = torch.where(y > 0, 0.2, 0.8) + 0.05 * torch.randn(4, 1, 32, 32, generator=gen)
    t, above = fit_threshold(x, y)
    assert not above and 0.3 < t < 0.7  # foreground is the darker class here


@pytest.mark.parametrize("above", [True, False])
def test_predictor_applies_the_fitted_side(above):
    x = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)
    y = (x > 0.5).float() if above else (x < 0.5).float()
    from celine.experiments.med_amalgamation.data import TaskData

    fn = threshold_predictor(TaskData("t", x, y, x, y))
    assert torch.equal(fn(x, None).float(), y)
