"""The CKA student never touches labels: shuffling the training labels gives the identical run,
while the supervised student (which does read them) changes."""

import pandas as pd
import torch
from cka_testing import make_ctx

from celine.experiments.cka.config import CKAConfig, SupervisedConfig
from celine.experiments.cka.method import CKA, Supervised

FEW = dict(epochs=2, batch_size=64, proj_dim=16, proj_hidden=32)


def _run(method, outputs, shuffle: bool):
    ctx = make_ctx(outputs)
    task = ctx.task
    real = task.data

    def data():
        train, val, test = real()
        if shuffle:
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))
            train = type(train)(train.x, train.y[perm])
        return train, val, test

    task.data = data
    torch.manual_seed(0)
    return method.run(ctx)


def test_shuffled_labels_give_the_identical_cka_run(cka_outputs):
    method = CKA(CKAConfig(**FEW))
    a = _run(method, cka_outputs, shuffle=False)
    b = _run(method, cka_outputs, shuffle=True)
    pd.testing.assert_frame_equal(a.tables["history"], b.tables["history"])
    assert a.metrics == b.metrics


def test_the_supervised_student_does_read_labels(cka_outputs):
    method = Supervised(SupervisedConfig(epochs=2, batch_size=64))
    a = _run(method, cka_outputs, shuffle=False)
    b = _run(method, cka_outputs, shuffle=True)
    assert not a.tables["history"]["ce"].equals(b.tables["history"]["ce"])
