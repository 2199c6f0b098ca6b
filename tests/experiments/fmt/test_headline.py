"""fmt's headline, pinned fast as what is true: pruning plus fine-tuning removes a BadNets
backdoor that fine-tuning alone keeps, and FMT's maps (FMP's unprojected feature-map FGSM, the
default since issue 26) do no better than as many random maps per layer. At smoke scale (8x8
digits, ResNet-20 x0.25, a 3-epoch BadNets model, one fine-tuning epoch), measured on the loaded
2-core machine, ASR after the defence: seed 0 FMT .315, random pruning .198, fine-tuning alone
.944; seed 2 .000 / .003 / .728. On a trigger the settings were not tuned on (checkerboard patch,
top-left, target 3; seed 0): FMT .446, random .087, fine-tuning .963. The 10-seed study behind
the README's headline is `conf/experiment/fmt_headline.yaml` (`celine reproduce task=fmt`).
"""

import pytest
from celine_testing import run_in_process

SMOKE = [
    "task=fmt", "tracking=none", "hardware.threads=1", "task.size=8", "task.epochs=3",
    "model.width=0.25", "method.finetune_epochs=1",
]  # fmt: skip
FMT_SMOKE = ["method.steps=1", "method.attack_samples=16"]


@pytest.mark.parametrize("seed", [0, 2])
def test_headline_fmt_no_better_than_random_pruning_both_beat_fine_tuning(seed, outputs, tmp_path):
    runs = {
        m: run_in_process(
            [*SMOKE, f"method={m}", f"seed={seed}", *(FMT_SMOKE if m == "fmt" else [])],
            tmp_path / m,
        )
        for m in ("fmt", "fmt_random_prune", "fmt_finetune")
    }
    fmt, rand, ft = (runs[m] for m in ("fmt", "fmt_random_prune", "fmt_finetune"))
    assert fmt["before/asr"] > 0.9  # the model is backdoored (the cached model is shared)
    assert ft["asr"] > 0.5  # fine-tuning alone keeps the backdoor: the comparison is not vacuous
    assert fmt["asr"] < ft["asr"] - 0.3 and rand["asr"] < ft["asr"] - 0.3  # pruning helps ...
    assert fmt["asr"] > rand["asr"] - 0.1  # ... and FMT's maps are no better than random ones


def test_fmt_on_a_trigger_it_was_not_tuned_on(outputs, tmp_path):
    """A checkerboard patch in the top-left corner with target class 3 (the settings were chosen
    on the white bottom-right square, target 0): same smoke scale, seed 0."""
    untuned = ["task.patch_shape=checker", "task.patch_position=top_left", "task.target=3"]
    runs = {
        m: run_in_process(
            [*SMOKE, *untuned, f"method={m}", "seed=0", *(FMT_SMOKE if m == "fmt" else [])],
            tmp_path / m,
        )
        for m in ("fmt", "fmt_random_prune", "fmt_finetune")
    }
    fmt, rand, ft = (runs[m] for m in ("fmt", "fmt_random_prune", "fmt_finetune"))
    assert fmt["before/asr"] > 0.9 and ft["asr"] > 0.5  # implanted; fine-tuning alone keeps it
    # measured: FMT .446, random pruning .087, fine-tuning alone .963: FMT still lowers the ASR
    # but less than random maps do on this trigger
    assert fmt["asr"] < ft["asr"] - 0.3 and fmt["asr"] > rand["asr"] - 0.1


def test_a_model_that_is_not_backdoored_reports_asr_and_ra_missing_not_a_win():
    from celine.experiments.fmt.method import missing_if_not_backdoored

    metrics = {"asr": 0.01, "ra": 0.7, "acc": 0.8, "before/asr": 0.262}
    missing = missing_if_not_backdoored(metrics, 0.5)
    assert (
        set(missing) == {"asr", "ra"}
        and "not backdoored (ASR before the defence 0.26" in missing["asr"]
    )
    assert metrics == {"acc": 0.8, "before/asr": 0.262}
    backdoored = {"asr": 0.01, "ra": 0.7, "before/asr": 0.963}
    assert missing_if_not_backdoored(backdoored, 0.5) == {} and backdoored["asr"] == 0.01
