"""The segmentation tasks: MONAI's synthetic images (exact masks) or real NIfTI volumes.

Every task becomes a `TaskData` of float images (N, 1, *spatial) in [0, 1] and binary masks
(N, 1, *spatial), resized to `image_size` on every side. The synthetic tasks share MONAI's
circle/sphere generator but differ in object size and intensity statistics, so an expert trained
on one meets a domain shift on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class TaskData:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


# Each preset: generator arguments, then an intensity transform and which labels count.
# bright_discs      large bright objects, light noise: the "easy" domain
# inverted_gamma    same geometry, contrast inverted + gamma 0.5, heavier noise
# small_bright_class  many small objects of 3 intensity classes; only the brightest is the target
SYNTHETIC = {
    "bright_discs": dict(num_objs=5, rad_min=6, rad_max=14, noise_max=0.15, num_seg_classes=1),
    "inverted_gamma": dict(num_objs=5, rad_min=6, rad_max=14, noise_max=0.35, num_seg_classes=1),
    "small_bright_class": dict(
        num_objs=14, rad_min=3, rad_max=7, noise_max=0.08, num_seg_classes=3
    ),
}


def _synthetic_one(name: str, size: int, dims: int, rs: np.random.RandomState):
    from monai.data import create_test_image_2d, create_test_image_3d

    kw = dict(SYNTHETIC[name])
    if dims == 3:
        # spheres fill volumes much faster than discs fill slices: fewer, same radii
        kw["num_objs"] = max(2, kw["num_objs"] // 2)
        img, lab = create_test_image_3d(size, size, size, random_state=rs, **kw)
    else:
        img, lab = create_test_image_2d(size, size, random_state=rs, **kw)
    if name == "inverted_gamma":
        img = (1.0 - img) ** 0.5
    mask = lab == kw["num_seg_classes"] if name == "small_bright_class" else lab > 0
    return img.astype(np.float32), mask.astype(np.float32)


# The default benchmark (issue 27): every image of every task holds discs and squares of one
# intensity distribution, so no intensity threshold separates what a task labels from what it
# does not. The labels conflict across tasks: a disc is foreground in `discs`, background in
# `squares`; `large_objects` labels by size, whatever the shape. Each task has its own acquisition
# style (contrast, gamma, noise), the only cue a model without a task prompt has for which rule
# applies. About 1 image in 8 holds no object of its task's class (an empty label, scored).
SHAPES = {
    # rule: which objects are foreground; style: (invert, gamma, contrast, noise)
    "discs": dict(rule="disc", invert=False, gamma=1.0, contrast=1.0, noise=0.10),
    "squares": dict(rule="square", invert=True, gamma=0.5, contrast=1.0, noise=0.12),
    "large_objects": dict(rule="large", invert=False, gamma=1.0, contrast=0.5, noise=0.10),
}
LARGE_RADIUS = 8  # large_objects: objects with a half-side/radius of at least this many pixels


def _shapes_one(name: str, size: int, dims: int, rs: np.random.RandomState):
    spec = SHAPES[name]
    grid = np.stack(np.meshgrid(*([np.arange(size)] * dims), indexing="ij"), -1).astype(np.float32)
    img = np.zeros((size,) * dims, np.float32)
    mask = np.zeros((size,) * dims, np.float32)
    occupied = np.zeros((size,) * dims, bool)
    n_objs = rs.randint(4, 8) if dims == 2 else rs.randint(2, 5)
    empty = rs.rand() < 0.125  # no object of the task's class in this image
    placed = 0
    for _ in range(n_objs * 20):  # rejection sampling: objects do not touch
        if placed == n_objs:
            break
        r = rs.randint(4, 11)
        kind = "disc" if rs.rand() < 0.5 else "square"
        centre = rs.randint(r + 1, size - r - 1, size=dims).astype(np.float32)
        offset = np.abs(grid - centre)
        inside = (
            (offset**2).sum(-1) <= r * r if kind == "disc" else (offset <= r - 0.5).all(-1)
        )  # a square of side 2r: about the disc's extent, 27% more area
        labelled = kind == spec["rule"] or (spec["rule"] == "large" and r >= LARGE_RADIUS)
        if empty and labelled:
            continue
        halo = np.sqrt((offset**2).sum(-1)) <= r * 1.45 + 2  # covers the square's corners
        if (occupied & halo).any():
            continue
        occupied |= halo
        img[inside] = rs.uniform(0.55, 1.0)
        if labelled:
            mask[inside] = 1.0
        placed += 1
    img = img * spec["contrast"] + rs.normal(0.0, spec["noise"], img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0)
    if spec["invert"]:
        img = 1.0 - img
    img = img ** spec["gamma"]
    return img.astype(np.float32), mask


def synthetic_task(name: str, n: int, size: int, dims: int, seed: int):
    rs = np.random.RandomState(seed)
    one = _shapes_one if name in SHAPES else _synthetic_one
    pairs = [one(name, size, dims, rs) for _ in range(n)]
    x = torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None]
    y = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
    return x, y


def load_tasks(cfg) -> list[TaskData]:
    """All tasks of the task config, train and test splits."""
    if cfg.source == "synthetic":
        out = []
        for k, name in enumerate(cfg.tasks):
            # distinct, fixed streams per task and split: data do not depend on the run seed
            base = cfg.data_seed + 1000 * k
            tx, ty = synthetic_task(name, cfg.n_train, cfg.image_size, cfg.spatial_dims, base)
            vx, vy = synthetic_task(name, cfg.n_test, cfg.image_size, cfg.spatial_dims, base + 1)
            out.append(TaskData(name, tx, ty, vx, vy))
        return out
    out = []
    for name in cfg.tasks:
        if cfg.source == "decathlon":
            train = decathlon_items(cfg.data_root, name, "training", cfg.data_seed)
            test = decathlon_items(cfg.data_root, name, "validation", cfg.data_seed)
        else:
            items = nifti_items(Path(cfg.data_root) / name)
            cut = max(1, int(round(0.8 * len(items))))
            train, test = items[:cut], items[cut:] or items[-1:]
        tx, ty = load_volumes(train[: cfg.n_train], cfg)
        vx, vy = load_volumes(test[: cfg.n_test], cfg, test=True)
        out.append(TaskData(name, tx, ty, vx, vy))
    return out


# -- real data ---------------------------------------------------------------------------------


def decathlon_items(root: str, task: str, section: str, seed: int = 0) -> list[dict]:
    """The image/label file pairs of an extracted Medical Segmentation Decathlon task folder
    (root/TaskXX_Name with dataset.json), read by MONAI's DecathlonDataset, never downloaded."""
    from monai.apps import DecathlonDataset

    ds = DecathlonDataset(
        root_dir=root, task=task, section=section, download=False, transform=(),
        cache_rate=0.0, seed=seed, progress=False,
    )  # fmt: skip
    return [{"image": d["image"], "label": d["label"]} for d in ds.data]


def nifti_items(folder: Path) -> list[dict]:
    """imagesTr/*.nii[.gz] paired with labelsTr/ files of the same name."""
    images = sorted((folder / "imagesTr").glob("*.nii*"))
    items = []
    for img in images:
        if img.name.startswith("._"):  # macOS resource forks in the real Decathlon tars
            continue
        lab = folder / "labelsTr" / img.name
        if lab.is_file():
            items.append({"image": str(img), "label": str(lab)})
    if not items:
        raise FileNotFoundError(f"no imagesTr/labelsTr NIfTI pairs under {folder}")
    return items


def volume_transform(cfg):
    """MONAI transforms: load, channel first, RAS, resample to `pixdim` (Spacingd), scale the
    intensities (a fixed window, ScaleIntensityRanged, or each image's range)."""
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        Orientationd,
        ScaleIntensityd,
        ScaleIntensityRanged,
        Spacingd,
    )

    steps = [
        LoadImaged(["image", "label"], image_only=True),
        EnsureChannelFirstd(["image", "label"]),
        Orientationd(["image", "label"], axcodes="RAS"),
    ]
    pixdim, window = getattr(cfg, "pixdim", None), getattr(cfg, "intensity_range", None)
    if pixdim:
        steps.append(
            Spacingd(["image", "label"], pixdim=list(pixdim), mode=("bilinear", "nearest"))
        )
    if window:
        lo, hi = window
        steps.append(ScaleIntensityRanged("image", lo, hi, 0.0, 1.0, clip=True))
    else:
        steps.append(ScaleIntensityd("image", minv=0.0, maxv=1.0, channel_wise=True))
    return Compose(steps)


def load_volumes(items: list[dict], cfg, test: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Load pairs with MONAI transforms into (N, 1, *size) tensors. Training: resized to
    image_size; 2D takes each volume's axial slice with the most foreground. Test with
    `test_size`: padded or cropped to test_size, not resized (sliding-window inference), and 2D
    takes the middle slice unless `test_slice=foreground`."""
    from monai.transforms import Resize, ResizeWithPadOrCrop

    load = volume_transform(cfg)
    test_size = getattr(cfg, "test_size", 0) if test else 0
    if test_size:
        fit = ResizeWithPadOrCrop((test_size,) * cfg.spatial_dims)
        resize_img = resize_lab = fit
    else:
        size = (cfg.image_size,) * cfg.spatial_dims
        resize_img = Resize(size, mode="trilinear" if cfg.spatial_dims == 3 else "bilinear")
        resize_lab = Resize(size, mode="nearest")
    by_label = not test or getattr(cfg, "test_slice", "middle") == "foreground"
    xs, ys = [], []
    for item in items:
        d = load(dict(item))
        img = torch.as_tensor(np.asarray(d["image"]), dtype=torch.float32)
        lab = torch.as_tensor(np.asarray(d["label"]))
        img = img[min(cfg.channel, img.shape[0] - 1)][None]
        fg = (
            torch.isin(lab[:1], torch.tensor(cfg.label_classes))
            if cfg.label_classes
            else lab[:1] > 0
        )
        fg = fg.float()
        if cfg.spatial_dims == 2:
            if img.ndim == 4:  # (1, H, W, D): one axial slice
                z = int(fg.sum(dim=(0, 1, 2)).argmax()) if by_label else img.shape[-1] // 2
                img, fg = img[..., z], fg[..., z]
        elif img.ndim == 3:
            raise ValueError(f"{item['image']}: a 2D image cannot feed a 3D task")
        xs.append(torch.as_tensor(resize_img(img)).as_subclass(torch.Tensor))
        ys.append((torch.as_tensor(resize_lab(fg)).as_subclass(torch.Tensor) > 0.5).float())
    return torch.stack(xs), torch.stack(ys)


# -- prompts from labels -------------------------------------------------------------------------


def boxes_from_masks(masks: torch.Tensor, jitter: float = 0.0, gen=None) -> torch.Tensor:
    """(B, 1, *S) masks -> (B, 2, dims) min and max corners (voxel coordinates, inclusive), with
    optional jitter of each corner by up to `jitter` * side. Empty masks get the whole image."""
    dims = masks.ndim - 2
    size = torch.tensor(masks.shape[2:], dtype=torch.float32)
    out = torch.zeros(masks.shape[0], 2, dims)
    for b in range(masks.shape[0]):
        idx = torch.nonzero(masks[b, 0] > 0.5).float()
        if len(idx) == 0:
            lo, hi = torch.zeros(dims), size - 1
        else:
            lo, hi = idx.min(0).values, idx.max(0).values
        if jitter > 0:
            noise = (torch.rand(2, dims, generator=gen) * 2 - 1) * jitter * size
            lo, hi = lo + noise[0], hi + noise[1]
        out[b, 0] = torch.minimum(lo, hi).clamp(min=0).minimum(size - 1)
        out[b, 1] = torch.maximum(lo, hi).clamp(min=0).minimum(size - 1)
    return out


def points_from_masks(masks: torch.Tensor, gen=None) -> torch.Tensor:
    """(B, 1, *S) -> (B, 1, dims): one foreground voxel per mask, uniformly drawn (centre if empty)."""
    dims = masks.ndim - 2
    out = torch.zeros(masks.shape[0], 1, dims)
    for b in range(masks.shape[0]):
        idx = torch.nonzero(masks[b, 0] > 0.5).float()
        if len(idx) == 0:
            out[b, 0] = (torch.tensor(masks.shape[2:]) - 1) / 2
        else:
            out[b, 0] = idx[torch.randint(len(idx), (1,), generator=gen)]
    return out
