"""A cka run gives the same numbers whatever torch's thread count is: every teacher and student
step runs under `task.threads` (default 1). The control (`task.threads=null`, follow the
caller's count) shows that the comparison can fail: there 1 and 2 threads sum floats in another
order and the loss history differs."""

import pandas as pd
import pytest
import torch
from cka_testing import make_ctx

from celine.experiments.cka.config import CKAConfig
from celine.experiments.cka.method import CKA

FEW = dict(epochs=3, batch_size=64, proj_dim=16, proj_hidden=32)


def _run(outputs, caller_threads: int, task_threads: int | None):
    """A fresh outputs folder per run: the teachers are trained under the thread count too."""
    ctx = make_ctx(outputs, task={"threads": task_threads})
    before = torch.get_num_threads()
    torch.set_num_threads(caller_threads)
    try:
        torch.manual_seed(0)
        result = CKA(CKAConfig(**FEW)).run(ctx)
        # the run restores the caller's count
        assert torch.get_num_threads() == caller_threads
    finally:
        torch.set_num_threads(before)
    return result


def test_one_or_two_caller_threads_give_the_identical_run(tmp_path):
    a = _run(tmp_path / "t1", caller_threads=1, task_threads=1)
    b = _run(tmp_path / "t2", caller_threads=2, task_threads=1)
    pd.testing.assert_frame_equal(a.tables["history"], b.tables["history"], check_exact=True)
    assert a.metrics == b.metrics


def test_following_the_caller_threads_changes_the_float_sums(tmp_path):
    a = _run(tmp_path / "t1", caller_threads=1, task_threads=None)
    b = _run(tmp_path / "t2", caller_threads=2, task_threads=None)
    parts = ["kd", "intra", "inter", "align"]
    differs = (a.tables["history"][parts] != b.tables["history"][parts]).to_numpy().any()
    assert differs, "1 and 2 threads summed identically: the fixed-thread test proves nothing"


def test_a_bad_thread_count_is_refused_naming_the_key(tmp_path):
    from celine.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        make_ctx(tmp_path, task={"threads": 0})
    assert err.value.key == "task.threads"
