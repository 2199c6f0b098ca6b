"""The real-data path reads NIfTI (Decathlon layout and a plain folder) through MONAI transforms;
the synthetic tasks have exact masks and a real domain shift between them."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from celine.experiments.med_amalgamation.data import (
    decathlon_items,
    load_volumes,
    nifti_items,
    synthetic_task,
)


def _write_task(folder, n=3, shape=(20, 24, 8)):
    """A tiny Decathlon-style task: dataset.json, imagesTr/, labelsTr/ of NIfTI volumes with one
    labelled box whose extent is known, brightest on slice 5."""
    import nibabel as nib

    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rs = np.random.RandomState(0)
    entries = []
    for i in range(n):
        img = rs.rand(*shape).astype(np.float32) * 100
        lab = np.zeros(shape, np.uint8)
        lab[4:14, 6:18, 5] = 2  # most foreground on slice 5
        lab[4:6, 6:8, 2] = 1
        name = f"case_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(img, np.eye(4)), folder / "imagesTr" / name)
        nib.save(nib.Nifti1Image(lab, np.eye(4)), folder / "labelsTr" / name)
        entries.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "Hippocampus", "description": "test", "reference": "", "licence": "",
        "tensorImageSize": "3D", "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
        "numTraining": n, "numTest": 0, "training": entries, "test": [],
    }  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(meta))


def test_decathlon_loader_reads_a_local_nifti_task(tmp_path):
    _write_task(tmp_path / "Task04_Hippocampus", n=5)
    train = decathlon_items(str(tmp_path), "Task04_Hippocampus", "training")
    val = decathlon_items(str(tmp_path), "Task04_Hippocampus", "validation")
    assert len(train) + len(val) == 5 and len(val) == 1  # val_frac 0.2
    cfg = SimpleNamespace(spatial_dims=2, image_size=64, channel=0, label_classes=[])
    x, y = load_volumes(train, cfg)
    assert x.shape == (4, 1, 64, 64) and y.shape == (4, 1, 64, 64)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert set(torch.unique(y).tolist()) == {0.0, 1.0}
    # slice 5 (a 10 x 12 box of 20 x 24) was chosen and resized: ~ a quarter of the image
    assert y[0].mean() == pytest.approx(10 * 12 / (20 * 24), abs=0.03)
    cfg3 = SimpleNamespace(spatial_dims=3, image_size=64, channel=0, label_classes=[1])
    x3, y3 = load_volumes(train[:1], cfg3)
    assert x3.shape == (1, 1, 64, 64, 64)
    assert 0 < y3.sum() < 0.01 * y3.numel()  # only the small label-1 box


def test_decathlon_refuses_a_missing_folder_without_downloading(tmp_path):
    with pytest.raises(RuntimeError, match="Cannot find dataset directory"):
        decathlon_items(str(tmp_path), "Task02_Heart", "training")


def test_plain_nifti_folder(tmp_path):
    _write_task(tmp_path / "heart", n=2)
    (tmp_path / "heart" / "imagesTr" / "._case_000.nii.gz").write_bytes(b"junk")
    items = nifti_items(tmp_path / "heart")
    assert [p["image"].rsplit("/", 1)[1] for p in items] == ["case_000.nii.gz", "case_001.nii.gz"]


def test_synthetic_tasks_have_exact_binary_masks_and_differ_in_statistics():
    stats = {}
    for name in ("bright_discs", "inverted_gamma", "small_bright_class"):
        x, y = synthetic_task(name, 6, 64, 2, seed=0)
        assert x.shape == y.shape == (6, 1, 64, 64)
        assert set(torch.unique(y).tolist()) <= {0.0, 1.0} and y.sum() > 0
        inside, outside = x[y > 0].mean(), x[y == 0].mean()
        stats[name] = (float(inside - outside), float(y.mean()))
    assert stats["bright_discs"][0] > 0.3  # bright objects on a dark background
    assert stats["inverted_gamma"][0] < -0.3  # the same shapes, contrast inverted
    assert stats["small_bright_class"][1] < stats["bright_discs"][1] / 2  # small targets
