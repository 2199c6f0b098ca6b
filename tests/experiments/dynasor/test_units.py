"""Exact properties of Dynasor's pieces (notes §4.5, D1-D5) on scripted inputs."""

import math

import pytest

from celine.experiments.dynasor.certaindex import (
    entropy_certaindex,
    majority_vote,
    passes,
    reward_certaindex,
)
from celine.experiments.dynasor.cot import (
    ChainTrace,
    probe_answer,
    probe_overhead,
    replay_exit,
    replay_truncation,
    should_exit,
)


# D1 ------------------------------------------------------------------------------------------
def test_certaindex_entropy_form_worked_values():
    assert entropy_certaindex(["a", "a", "b", "c"]) == pytest.approx(0.25)  # 1 - 1.5/2
    assert entropy_certaindex(["a"] * 5) == pytest.approx(1.0)
    assert entropy_certaindex(["a", "b", "c", "d", "e"]) == pytest.approx(0.0, abs=1e-12)
    # a missing answer is its own cluster: two Nones are not "agreement"
    assert entropy_certaindex([None, None]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        entropy_certaindex(["a"])


def test_reward_form_and_combined_thresholds():
    assert reward_certaindex([0.2, 0.4], "mean") == pytest.approx(0.3)
    assert reward_certaindex([0.2, 0.4], "max") == pytest.approx(0.4)
    with pytest.raises(ValueError):
        reward_certaindex([1.2])
    agree = ["a", "a", "a", "b"]  # H~ = 1 - H/log 4 ~ 0.59
    h = entropy_certaindex(agree)
    assert passes(agree, entropy_threshold=h)
    assert not passes(agree, entropy_threshold=h + 1e-9)
    # every configured threshold must pass
    assert passes(agree, [0.9] * 4, entropy_threshold=0.5, reward_threshold=0.8)
    assert not passes(agree, [0.5] * 4, entropy_threshold=0.5, reward_threshold=0.8)
    assert not passes(agree, [0.9] * 4, entropy_threshold=0.7, reward_threshold=0.8)


def test_majority_vote_skips_missing_answers_and_breaks_ties_by_first_seen():
    assert majority_vote([None, 3, 5, 5, None, None]) == 5
    assert majority_vote([7, 3, 3, 7]) == 7
    assert majority_vote([None, None]) is None


# D2 / D3 -------------------------------------------------------------------------------------
def test_probe_answer_stops_at_the_first_unmatched_brace():
    assert probe_answer("18} more text }") == "18"
    assert probe_answer("\\frac{1}{2}}") == "\\frac{1}{2}"
    assert probe_answer("18") == ""  # nothing closed: no answer


def test_exit_rule_fires_only_on_n_equal_nonempty_certain_probes():
    no = [False] * 5
    assert should_exit(["3", "5", "5"], no[:3], 2)
    assert not should_exit(["5"], no[:1], 2)  # fewer probes than the window
    assert not should_exit(["", ""], no[:2], 2)  # empty answers never exit
    assert not should_exit(["5", "5"], [False, True], 2)  # a hesitant probe blocks the exit
    assert should_exit(["5", "5", "5"], no[:3], 3)


def test_regression_reference_bug_disagreeing_probes_do_not_exit():
    """The reference's should_early_exit returns True once `window` answers exist whatever
    they say (issue #25). Disagreeing, non-empty, certain probes must not exit."""
    assert not should_exit(["3", "4"], [False, False], 2)
    assert not should_exit(["1", "2", "3", "4", "5"], [False] * 5, 3)
    assert not should_exit(["7", "7", "8"], [False] * 3, 3)


def _trace():
    # probes every 4 tokens: answers 9, 9 (stable at 8), chain ends at 20 with answer 18
    return ChainTrace(
        problem=0,
        answer="18",
        length=21,
        final="18",
        positions=[4, 8, 12, 16, 20],
        probes=["", "9", "9", "18", "18"],
        hesitant=[False] * 5,
        truncated=["", "", "", "", "18"],
        probe_tokens=[3] * 5,
    )


def test_cot_replay_exits_at_the_first_consistent_window():
    tr = _trace()
    assert replay_exit(tr, 4, 2, 4) == (12, "9")  # a stable wrong answer exits too
    assert replay_exit(tr, 8, 2, 4) == (21, "18")  # probes at 8, 16 only: 9 vs 18, no exit
    assert replay_exit(tr, 4, 5, 4) == (21, "18")  # never 5 agreeing: the full chain


def test_truncation_baselines():
    tr = _trace()
    assert replay_truncation(tr, 32, 4, forced=False) == (21, "18")  # fits: its own answer
    assert replay_truncation(tr, 12, 4, forced=False) == (12, "")  # cut before the box
    assert replay_truncation(tr, 12, 4, forced=True) == (12, "9")  # a probe at the budget


# D5 ------------------------------------------------------------------------------------------
def test_deadline_and_attainment():
    from types import SimpleNamespace

    from celine.experiments.dynasor.online import attainment, deadline, sustainable_rate

    assert deadline(2.0, 1.5, 3, 10.0) == pytest.approx(47.0)
    progs = [
        SimpleNamespace(arrival=0.0, factor=1, finish=10.0),  # deadline 10: met (inclusive)
        SimpleNamespace(arrival=0.0, factor=2, finish=21.0),  # deadline 20: missed
        SimpleNamespace(arrival=5.0, factor=3, finish=30.0),  # deadline 35: met
    ]
    assert attainment(progs, 1.0, 10.0) == pytest.approx(2 / 3)
    assert attainment(progs, 2.0, 10.0) == pytest.approx(1.0)
    assert sustainable_rate([1, 2, 3], [1.0, 0.95, 0.85], 0.9) == pytest.approx(2.5)
    assert sustainable_rate([1, 2], [0.5, 0.4], 0.9) == 0.0
    assert sustainable_rate([1, 2], [1.0, 0.95], 0.9) == 2.0
    assert math.isfinite(sustainable_rate([1, 2], [0.95, 0.95], 0.9))


def test_dynasor_cot_beats_truncation_on_self_doubt_traces():
    """On traces whose chains keep going after the answer is stable (self-doubt), probing
    exits early at (almost) no accuracy cost, and truncating to the same mean budget loses
    accuracy: the paper's CoT claim, checked on the offline-replay harness (fixed seed)."""
    from celine.experiments.dynasor.cot import cot_point, truncation_point
    from celine.experiments.dynasor.synthetic import synthetic_traces

    traces = synthetic_traces(60, 4, seed=3)
    full_tokens = sum(t.length for t in traces) / len(traces)
    full_acc = sum(t.final == t.answer for t in traces) / len(traces)
    dyn = cot_point(traces, 64, 3, 32)
    assert dyn.tokens < 0.7 * full_tokens
    assert dyn.accuracy >= full_acc - dyn.accuracy_se
    budget = int(dyn.tokens) // 32 * 32
    assert truncation_point(traces, budget, 32).accuracy < dyn.accuracy - 0.1


def test_probe_overhead_counts_suffix_and_answer_with_reuse_and_the_prefix_without():
    """Probes every 8 tokens (recorded every 4), exit at 16: two probes used (at 8 and 16), each
    generating 3 tokens after a 2-token suffix on a 10-token prompt."""
    tr = ChainTrace(0, "7", 30, "7", positions=[4, 8, 12, 16, 20], probes=["7"] * 5,
                    hesitant=[False] * 5, truncated=[""] * 5, probe_tokens=[3] * 5,
                    prompt_len=10, suffix_len=2)  # fmt: skip
    assert probe_overhead(tr, 8, 16, 4) == (2 * (2 + 3), (10 + 8 + 5) + (10 + 16 + 5))


def test_bootstrap_interval_is_paired_over_rows_and_covers_the_statistic():
    import numpy as np

    from celine.stats import bootstrap

    rng = np.random.default_rng(0)
    a = rng.random(200)
    point, low, high = bootstrap(a, a + 0.1, statistic=lambda x, y: float(np.mean(y - x)))
    # the rows are resampled jointly: a constant paired shift has no spread
    assert point == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    point, low, high = bootstrap(a, statistic=np.mean)
    assert low < point < high and high - low < 0.2
    with pytest.raises(ValueError):
        bootstrap(a, a[:5], statistic=lambda x, y: 0.0)


def test_a_baseline_that_solves_nothing_refuses_the_savings_claim():
    import numpy as np

    from celine.experiments.dynasor.batch import compare

    zeros = np.zeros(40)
    out = compare(zeros, np.full(40, 3.0), zeros, np.full(40, 8.0), min_baseline_accuracy=0.1)
    assert out.refused and "min_baseline_accuracy" in out.refused
    assert "test/token_savings" not in out.metrics() and out.metrics()["test/claim_refused"] == 1
    right = (np.arange(40) % 2).astype(float)
    out = compare(right, np.full(40, 3.0), right, np.full(40, 8.0), min_baseline_accuracy=0.1)
    assert not out.refused and out.metrics()["test/token_savings"] == pytest.approx(1 - 3 / 8)
