"""The room's headline (experiments/mfdmc/README.md): on clustered planted data MFDMC's test
RMSE is below a tuned biased MF's, over paired seeds, by a margin. The tuned settings are the
ones bench/mfdmc/headline.py chose on validation RMSE of an unreported data seed
(bench/mfdmc/results/chosen.csv); each seed is one data set, split and initialisation."""

import numpy as np
import pytest
from celine_testing import run_in_process

# chosen in bench/mfdmc/results/chosen.csv (4 configurations each, data seed 100)
TUNED = {
    "mfdmc": ["++method.views=2", "++method.min_usage=0.1"],
    "mf_biased": ["++method.reg=0.1"],
}
# At a smaller scale (200 users x 150 items, density 0.2, seeds 0 and 1) tuned biased MF was
# ahead by 0.02-0.03 RMSE: the claim is scale-dependent, so the CI test runs the README's size
# on one seed (about 20 s of CPU on an idle machine, two runs).


def _rmse(method: str, seed: int, extra: list[str], run_dir) -> float:
    overrides = [*extra, f"method={method}", f"seed={seed}", f"++task.data_seed={seed}",
                 "++task.planted_spread=0.0", "hardware.threads=1", *TUNED[method]]  # fmt: skip
    return run_in_process(overrides, run_dir)["test/rmse"]


def _paired_gaps(seeds, extra, tmp_path) -> np.ndarray:
    return np.array(
        [
            _rmse("mf_biased", s, extra, tmp_path / f"b{s}")
            - _rmse("mfdmc", s, extra, tmp_path / f"m{s}")
            for s in seeds
        ]
    )


def test_headline_mfdmc_beats_tuned_biased_mf_on_clustered_data(outputs, tmp_path):
    """Seed 0 of the README's table (biased MF 0.704, MFDMC 0.615): a gap of at least 0.03."""
    (gap,) = _paired_gaps([0], ["task=mfdmc"], tmp_path)
    assert gap > 0.03, gap


@pytest.mark.slow
def test_headline_mfdmc_beats_tuned_biased_mf_on_clustered_data_readme_scale(outputs, tmp_path):
    """The README's five paired seeds (gap 0.069, 95% CI 0.028 to 0.111): the lower end of
    the 95% interval of the paired gap is above 0.02 RMSE."""
    from scipy import stats

    gaps = _paired_gaps(range(5), ["task=mfdmc"], tmp_path)
    low = gaps.mean() - stats.t.ppf(0.975, len(gaps) - 1) * gaps.std(ddof=1) / len(gaps) ** 0.5
    assert low > 0.02, gaps
