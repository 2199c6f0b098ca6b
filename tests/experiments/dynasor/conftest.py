"""Shared by the online-scheduling tests: a toy simulator setting where every step costs 1 ms."""

import pytest

from celine.experiments.dynasor.online import OnlineSetting
from celine.serving import LatencyModel

MS = 1e-3


@pytest.fixture
def online_setting():
    """`online_setting(**overrides)` -> an OnlineSetting with a 1 ms flat step and small limits,
    so hand-computed schedules are easy to check."""

    def make(**kw) -> OnlineSetting:
        base = dict(
            latency=LatencyModel(c0=MS, c_prefill=0.0, c_decode=0.0, c_kv=0.0),
            max_num_seqs=4,
            max_num_batched_tokens=512,
            kv_capacity_tokens=4096,
            detect_at=2,
            cap=4,
            threshold=0.7,
            continue_prob=0.5,
            base_deadline=0.05,
            starvation_s=1.0,
            prior_len=10.0,
        )
        return OnlineSetting(**{**base, **kw})

    return make
