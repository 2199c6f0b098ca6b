"""celine.evidence: grouping by everything but the seed, reruns, missing metrics, the baseline."""

import math

import pandas as pd
import pytest
from scipy import stats as sps

from celine import evidence


def _table(rows):
    return pd.DataFrame(rows, columns=["method", "model", "seed", "start", "acc", "missing"])


def _runs():
    rows = []
    for s, (a, b) in enumerate([(0.90, 0.80), (0.85, 0.82), (0.95, 0.81), (0.91, 0.85)]):
        rows.append(["new", "m", str(s), s, a, {}])
        rows.append(["base", "m", str(s), s, b, {}])
    return rows


def test_groups_by_everything_but_the_seed_with_scipy_intervals_and_paired_p():
    ev = evidence.summarise(_table(_runs()), ["acc"], baseline="base")
    s = ev.summary.set_index("method")
    assert ev.keys == ["method", "model"]
    new, base = [0.90, 0.85, 0.95, 0.91], [0.80, 0.82, 0.81, 0.85]
    assert s.loc["new", "n"] == 4 and s.loc["new", "acc"] == pytest.approx(sum(new) / 4)
    low, high = sps.t.interval(0.95, 3, loc=sum(new) / 4, scale=sps.sem(new))
    assert (s.loc["new", "acc low"], s.loc["new", "acc high"]) == pytest.approx((low, high))
    assert s.loc["new", "acc p"] == pytest.approx(sps.ttest_rel(new, base).pvalue)
    assert s.loc["new", "acc pairs"] == 4
    assert math.isnan(s.loc["base", "acc diff"])  # the baseline is not paired with itself
    md = evidence.markdown(ev)
    assert "(baseline)" in md and "p=" in md and "4 pairs" in md


def test_a_rerun_of_a_seed_counts_once_the_latest():
    rows = _runs() + [["new", "m", "0", 99, 0.10, {}]]  # seed 0 again, later, much worse
    ev = evidence.summarise(_table(rows), ["acc"], baseline="base")
    s = ev.summary.set_index("method")
    assert s.loc["new", "n"] == 4 and ev.reruns_dropped == 1
    assert s.loc["new", "acc"] == pytest.approx((0.10 + 0.85 + 0.95 + 0.91) / 4)
    assert "rerun" in evidence.legend(ev)


def test_a_missing_metric_is_shown_missing_never_as_a_number():
    rows = _runs()
    rows[0] = ["new", "m", "0", 0, float("nan"), {"acc": "baseline at chance"}]
    ev = evidence.summarise(_table(rows), ["acc"], baseline="base")
    s = ev.summary.set_index("method")
    assert math.isnan(s.loc["new", "acc"]) and "baseline at chance" in s.loc["new", "acc missing"]
    row = next(line for line in evidence.markdown(ev).splitlines() if line.startswith("| new"))
    assert "missing (1 of 4: baseline at chance)" in row and "p=" not in row


def test_one_seed_reports_an_undefined_interval_and_the_pairing_uses_shared_seeds():
    rows = [["new", "m", "0", 0, 0.9, {}], ["base", "m", "0", 0, 0.8, {}],
            ["base", "m", "1", 1, 0.7, {}]]  # fmt: skip
    ev = evidence.summarise(_table(rows), ["acc"], baseline="base")
    row = next(line for line in evidence.markdown(ev).splitlines() if line.startswith("| new"))
    assert "0.9 [n/a]" in row and "+0.1 [n/a], p=n/a" in row and "1 pairs" in row


def test_other_keys_pick_the_matching_baseline_group():
    rows = []
    for model, shift in (("small", 0.1), ("large", -0.1)):
        for s in range(3):
            rows.append(["new", model, str(s), s, 0.5 + shift + 0.01 * s, {}])
            rows.append(["base", model, str(s), s, 0.5, {}])
    ev = evidence.summarise(_table(rows), ["acc"], baseline="base")
    s = ev.summary.set_index(["method", "model"])
    assert s.loc[("new", "small"), "acc diff"] == pytest.approx(0.11)
    assert s.loc[("new", "large"), "acc diff"] == pytest.approx(-0.09)


def test_unknown_baseline_is_refused():
    with pytest.raises(ValueError, match="no runs of method 'nope'"):
        evidence.summarise(_table(_runs()), ["acc"], baseline="nope")


def test_plot_has_error_bars(tmp_path):
    ev = evidence.summarise(_table(_runs()), ["acc"], baseline="base")
    assert evidence.plot(ev, tmp_path / "p.png", "t") and (tmp_path / "p.png").stat().st_size > 1000


def test_a_metric_the_baseline_does_not_report_is_said_so_not_called_unpaired():
    rows = [r[:4] + [r[4] if r[0] == "new" else float("nan"), {}] for r in _runs()]
    ev = evidence.summarise(_table(rows), ["acc"], baseline="base")
    row = next(line for line in evidence.markdown(ev).splitlines() if line.startswith("| new"))
    assert "base has no acc" in row and "no shared seeds" not in row
