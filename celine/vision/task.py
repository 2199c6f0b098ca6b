"""The base of tasks on one image dataset (deepfeature, fmt, ...): the splits, loaded once.

The data seed is `task.model_seed` when set, else the run's seed, so a sweep over run seeds
can keep one dataset and model. A task config using this base has `data`, `data_root`, `size`,
`val_fraction`, `test_fraction` and `model_seed`.
"""

from __future__ import annotations


class ImageTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx
        self._splits = None

    @property
    def seed(self) -> int:
        return self.ctx.seed if self.cfg.model_seed is None else self.cfg.model_seed

    def splits(self):
        if self._splits is None:
            from celine.vision.datasets import load_images

            c = self.cfg
            splits = load_images(
                c.data, c.data_root, seed=self.seed, size=c.size,
                val_fraction=c.val_fraction, test_fraction=c.test_fraction,
            )  # fmt: skip
            self.check(splits)
            self._splits = splits
        return self._splits

    def check(self, splits) -> None:
        """Validate the task's settings against the loaded data (a subclass hook)."""

    @property
    def num_classes(self) -> int:
        return self.splits().num_classes

    @property
    def in_channels(self) -> int:
        return self.splits().channels

    @property
    def size(self) -> int:
        return self.splits().size
