"""cka's headline, pinned fast as what is true at smoke scale: with a well-started student
(Kaiming init, `task.student_init=kaiming`), CKA's contrastive and alignment terms add nothing
measurable over vanilla KA (KD on the teachers' concatenated soft targets): union accuracy within
3 points, both far above chance. The README's +1.4 points at the default init come from the
default-initialised LeNet's slow start (at chance for ~13 epochs), and are the slow twin's claim
(`test_acceptance.py`, 60 epochs, 3 seeds); the paper's setting is not reproduced offline.

Smoke: teachers 8 epochs, students 10, seeds 0 and 1. Measured on the loaded 2-core machine:
CKA .835 / .839, vanilla KA .826 / .839, the concatenated teachers .878 / .880.
"""

import pytest
from celine_testing import run_in_process

SMOKE = [
    "task=cka", "tracking=none", "hardware.threads=1", "task.student_init=kaiming",
    "task.teacher_epochs=8", "method.epochs=10", "task.plot=pca", "task.plot_points=50",
]  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
def test_headline_cka_gains_nothing_over_vanilla_ka_with_a_well_started_student(
    seed, outputs, tmp_path
):
    runs = {
        m: run_in_process([*SMOKE, f"method={m}", f"seed={seed}"], tmp_path / m)
        for m in ("cka", "cka_vanilla_ka")
    }
    cka, ka = runs["cka"]["test/union_acc"], runs["cka_vanilla_ka"]["test/union_acc"]
    assert cka > 0.7 and ka > 0.7  # 10 classes: chance is 0.1; not a tie at chance
    assert abs(cka - ka) < 0.03
    # both below what their pseudo-labels come from (the teachers' concatenated argmax)
    assert max(cka, ka) < runs["cka"]["reference/concat_teachers_union_acc"] + 0.01
