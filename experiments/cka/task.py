"""The cka task: the image data, the union label space, the frozen teachers (trained once per
configuration and cached under outputs/models/cka_teachers), and the student's measurements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from celine.vision.datasets import ImageSet, ImageSplits, load_images
from celine.vision.train import config_key, embed, predict, train_classifier
from celine.vision.zoo import build_classifier


@dataclass
class Union:
    """The union task. Teacher k predicts `classes[k]` (dataset class ids, in order); the union
    label of dataset class classes[k][c] is offsets[k] + c."""

    classes: list[list[int]]

    @property
    def offsets(self) -> list[int]:
        out, total = [], 0
        for group in self.classes:
            out.append(total)
            total += len(group)
        return out

    @property
    def num_classes(self) -> int:
        return sum(len(g) for g in self.classes)

    def relabel(self, data: ImageSet) -> ImageSet:
        """Only the images of the teachers' classes, labelled in the union space."""
        return data.classes([c for group in self.classes for c in group], relabel=True)

    def task_of(self, union_labels: Tensor) -> Tensor:
        """The teacher index owning each union label."""
        bounds = torch.tensor(self.offsets[1:], dtype=torch.long)
        return torch.bucketize(union_labels, bounds, right=True)


class CKATask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx
        self._splits: ImageSplits | None = None
        self._teachers: list[nn.Module] | None = None

    @contextmanager
    def fixed_threads(self) -> Iterator[None]:
        """Run the block under `task.threads` torch threads (then restore the previous count), so
        a seed gives the same numbers whatever hardware.threads is (see the config)."""
        if self.cfg.threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.cfg.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    # -- data -------------------------------------------------------------------------------
    def splits(self) -> ImageSplits:
        if self._splits is None:
            c = self.cfg
            self._splits = load_images(
                c.data, c.data_root, seed=c.split_seed, size=c.size,
                val_fraction=c.val_fraction, test_fraction=c.test_fraction,
            )  # fmt: skip
        return self._splits

    @property
    def union(self) -> Union:
        groups = [list(map(int, g)) for g in self.cfg.splits]
        splits = self.splits()
        if self.cfg.split_by == "coarse":
            coarse = splits.fine_to_coarse
            groups = [[f for f in range(100) if coarse[f] in set(g)] for g in groups]
        top = max(c for g in groups for c in g)
        if top >= splits.num_classes:
            from celine.api import ConfigError

            raise ConfigError(
                "task.splits", self.cfg.splits, f"{splits.name} has {splits.num_classes} classes"
            )
        return Union(groups)

    def data(self) -> tuple[ImageSet, ImageSet, ImageSet]:
        """(train, val, test) restricted to the teachers' classes, in union labels."""
        s, u = self.splits(), self.union
        return u.relabel(s.train), u.relabel(s.val), u.relabel(s.test)

    # what model=small_cnn reads to shape a classifier for this task
    @property
    def num_classes(self) -> int:
        return self.union.num_classes

    @property
    def in_channels(self) -> int:
        return self.splits().channels

    @property
    def size(self) -> int:
        return self.splits().size

    def build_student(self) -> nn.Module:
        m = self.ctx.model_cfg
        model = build_classifier(
            m.arch, self.num_classes, self.in_channels, width=m.width, size=self.size
        )
        if self.cfg.student_init == "kaiming":
            for layer in model.modules():
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)
        return model

    # -- teachers ---------------------------------------------------------------------------
    def teacher_seed(self) -> int:
        return self.ctx.seed if self.cfg.teacher_seed is None else int(self.cfg.teacher_seed)

    def teachers(self) -> list[nn.Module]:
        """One frozen classifier per split, trained on its own classes only (cached)."""
        if self._teachers is None:
            self._teachers = [self._teacher(k) for k in range(len(self.union.classes))]
        return self._teachers

    def _teacher(self, k: int) -> nn.Module:
        c, s = self.cfg, self.splits()
        classes = self.union.classes[k]
        arch = c.teacher_arch or self.ctx.model_cfg.arch
        seed = self.teacher_seed()
        spec = {
            "data": c.data, "root": c.data_root, "size": s.size, "split_seed": c.split_seed,
            "val": c.val_fraction, "test": c.test_fraction, "classes": classes, "arch": arch,
            "width": c.teacher_width, "epochs": c.teacher_epochs, "lr": c.teacher_lr,
            "batch": c.teacher_batch_size, "wd": c.teacher_weight_decay,
            "opt": c.teacher_optimizer, "seed": seed,
        }  # fmt: skip
        path = Path(self.ctx.outputs_dir) / "models" / "cka_teachers" / f"{config_key(spec)}.pt"
        torch.manual_seed(seed * 1000 + k)
        model = build_classifier(arch, len(classes), s.channels, width=c.teacher_width, size=s.size)
        self.ctx.log.info("teacher %d (classes %s): %s", k, classes, path)

        def on_epoch(row: dict) -> None:
            self.ctx.log_metrics(
                {
                    f"teacher{k}/train_loss": row["train_loss"],
                    f"teacher{k}/val_acc": row["val_acc"],
                },
                step=row["epoch"],
            )

        train_classifier(
            model, s.train.classes(classes), s.val.classes(classes),
            epochs=c.teacher_epochs, lr=c.teacher_lr, batch_size=c.teacher_batch_size,
            weight_decay=c.teacher_weight_decay, optimizer=c.teacher_optimizer,
            seed=seed * 1000 + k, device=self.ctx.hardware.device, log=self.ctx.log,
            checkpoint=path, on_epoch=on_epoch,
        )  # fmt: skip
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def teacher_outputs(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """(logits, penultimate features) of every teacher on images x (CPU tensors)."""
        device = self.ctx.hardware.device
        teachers = self.teachers()
        logits = [predict(t, x, device) for t in teachers]
        feats = [embed(t, x, device) for t in teachers]
        return logits, feats

    # -- measurements -----------------------------------------------------------------------
    def scores(self, union_logits: Tensor, labels: Tensor) -> dict[str, float]:
        """Union accuracy, and per teacher task the accuracy on that task's images with the
        prediction restricted to its classes (comparable to the teacher's own accuracy)."""
        u = self.union
        out = {"union_acc": float((union_logits.argmax(1) == labels).float().mean())}
        owner = u.task_of(labels)
        accs = []
        for k, group in enumerate(u.classes):
            rows = owner == k
            lo = u.offsets[k]
            local = union_logits[rows, lo : lo + len(group)].argmax(1) + lo
            accs.append(float((local == labels[rows]).float().mean()))
            out[f"task{k}_acc"] = accs[-1]
        out["mean_task_acc"] = sum(accs) / len(accs)
        return out

    def teacher_scores(self, test: ImageSet) -> dict[str, float]:
        """Each teacher on its own task's test images, and on the whole union test set (where it
        can at best get its own share right)."""
        logits, _ = self.teacher_outputs(test.x)
        u = self.union
        owner = u.task_of(test.y)
        out: dict[str, float] = {}
        for k, z in enumerate(logits):
            rows = owner == k
            own = (z[rows].argmax(1) + u.offsets[k] == test.y[rows]).float().mean()
            union = (z.argmax(1) + u.offsets[k] == test.y).float().mean()
            out[f"teacher{k}/task_acc"] = float(own)
            out[f"teacher{k}/union_acc"] = float(union)
        own = [out[f"teacher{k}/task_acc"] for k in range(len(logits))]
        out["teachers/mean_task_acc"] = sum(own) / len(own)
        return out

    def union_class_names(self) -> list[str]:
        names = self.splits().class_names
        return [names[c] for group in self.union.classes for c in group]
