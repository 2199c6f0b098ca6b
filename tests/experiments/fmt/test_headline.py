"""fmt's headline, pinned fast as what is true: the backdoor is removed by pruning plus
fine-tuning whichever maps are pruned. At smoke scale (8x8 digits, ResNet-20 x0.25, a 3-epoch
BadNets model, one fine-tuning epoch) FMT's maps and as many random maps per layer both take the
ASR from >.9 to near 0, while the same fine-tuning without pruning keeps it; FMT is no better
than random pruning here. At full size the README's paired test over seeds finds the same: FMT
vs random pruning p = .57 (BadNets) and .14 (Blend) over 5 seeds, so its mean advantage is not
reproduced with significance. The slow twin (`test_fmt.py`, Blend, default size) checks FMT
against fine-tuning alone.

Measured on the loaded 2-core machine (seeds 0 / 2; before: ASR .963 / .941): FMT ASR .025 /
.068, random pruning .096 / .000, fine-tuning alone .917 / .713. Seed 1's 3-epoch model is not
backdoored (ASR .26) and is not used.
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
    assert fmt["asr"] < 0.2 and rand["asr"] < 0.2  # pruning + fine-tuning removes it ...
    assert abs(fmt["asr"] - rand["asr"]) < 0.15  # ... whichever maps are pruned


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
