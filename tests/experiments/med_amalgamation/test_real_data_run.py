"""The real-data path end to end through the runner (`celine.api.run`, what `celine run` calls):
small NIfTI volumes written here with a 2 mm spacing and raw intensities, resampled with
Spacingd, windowed with ScaleIntensityRanged, test volumes kept at their resampled size and
segmented with sliding_window_inference (issue 27)."""

import numpy as np
import pytest
from celine_testing import run_in_process


def _write_nifti_task(folder, n, seed, shape=(40, 40, 5)):
    """A task folder (imagesTr/, labelsTr/): a bright box of varying place on a noisy
    background, raw intensities 0..1000, voxels of 2 x 2 x 3 mm."""
    import nibabel as nib

    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rs = np.random.RandomState(seed)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    for i in range(n):
        img = rs.rand(*shape).astype(np.float32) * 300
        lab = np.zeros(shape, np.uint8)
        x0, y0 = rs.randint(4, 22, size=2)
        lab[x0 : x0 + 12, y0 : y0 + 10, 1:4] = 1
        img[lab > 0] += 600
        name = f"case_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(img, affine), folder / "imagesTr" / name)
        nib.save(nib.Nifti1Image(lab, affine), folder / "labelsTr" / name)


@pytest.fixture
def nifti_root(tmp_path):
    root = tmp_path / "data"
    _write_nifti_task(root / "organ_a", n=5, seed=0)
    _write_nifti_task(root / "organ_b", n=5, seed=1)
    return root


def test_nifti_volumes_run_end_to_end_with_spacing_window_and_sliding_window(
    nifti_root, outputs, tmp_path
):
    from celine.experiments.med_amalgamation.config import MedAmalgamationTaskConfig
    from celine.experiments.med_amalgamation.data import load_tasks

    common = [
        "task=med_amalgamation", "task.source=nifti", f"task.data_root={nifti_root}",
        "task.tasks=[organ_a,organ_b]", "task.pixdim=[1.0,1.0,3.0]",
        "task.intensity_range=[0,1000]", "task.test_size=96", "task.n_train=4", "task.n_test=1",
        "task.expert.epochs=1", "task.expert.filters=[4,8,16,32]",
    ]  # fmt: skip
    # 40 voxels of 2 mm resampled to 1 mm: 80 (79 on MONAI's grid) per side, padded to 96 at
    # test; the training slices are resized to 64
    cfg = MedAmalgamationTaskConfig(
        source="nifti", data_root=str(nifti_root), tasks=["organ_a", "organ_b"],
        pixdim=[1.0, 1.0, 3.0], intensity_range=[0, 1000], test_size=96, n_train=4, n_test=1,
    )  # fmt: skip
    a = load_tasks(cfg)[0]
    assert tuple(a.train_x.shape[2:]) == (64, 64) and tuple(a.test_x.shape[2:]) == (96, 96)
    assert float(a.train_x.max()) <= 1.0 and float(a.test_y.sum()) > 100  # middle slice: 1 of 1..3

    # the box is the only bright structure: a threshold fitted on the resized training slices
    # finds it in the windows of the padded test slices only if the windows are put back in place
    sanity = run_in_process([*common, "method=med_threshold"], tmp_path / "t")
    assert sanity["dice/mean"] > 0.9, sanity
    metrics = run_in_process([*common, "method.epochs=1", "method.hidden_size=32"], tmp_path / "k")
    assert metrics["experts/frozen"] == 1.0
    assert {"dice/organ_a", "dice_label_prompt/mean", "expert_dice/mean"} <= set(metrics)
