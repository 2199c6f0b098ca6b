"""Same command, same seed, same Dice: whether the experts were trained in this process or
loaded from the cache must not change the target's initial weights (issue 27)."""

import pytest
from celine_testing import run_in_process

TINY = [
    "task=med_amalgamation", "task.tasks=[bright_discs,inverted_gamma]", "task.n_train=8",
    "task.n_test=4", "task.expert.epochs=1", "task.expert.filters=[4,8,16,32]",
    "method.epochs=1", "method.hidden_size=32", "seed=3",
]  # fmt: skip


def test_same_command_and_seed_give_the_same_dice_with_trained_or_cached_experts(outputs, tmp_path):
    first = run_in_process(TINY, tmp_path / "a")  # trains the experts (an empty cache)
    second = run_in_process(TINY, tmp_path / "b")  # loads them from the cache
    for key in ("dice/mean", "hd95/mean", "train/final_loss"):
        assert second[key] == pytest.approx(first[key], abs=1e-6), key
