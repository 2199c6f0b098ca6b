"""Image classification data: scikit-learn's bundled digits (built in, no download) and the
standard local files of MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 and SVHN.

Every loader returns an `ImageSplits` of float32 images in [0, 1] shaped [N, C, H, W] with long
labels. Splits are deterministic given `seed`: datasets without an official test set (digits)
get a stratified train/val/test split; the others keep their official test set and carve a
stratified validation set out of the training set.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from celine.errors import ConfigError, DataError

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")

_FASHION_NAMES = [
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
]  # fmt: skip
_CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class ImageSet:
    """Images x [N, C, H, W] float32 in [0, 1] and labels y [N] long."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> ImageSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return ImageSet(self.x[idx], self.y[idx])

    def classes(self, keep: list[int], relabel: bool = True) -> ImageSet:
        """Only the images of the classes in `keep`; with `relabel`, class keep[i] becomes i."""
        keep = [int(c) for c in keep]
        mask = torch.isin(self.y, torch.tensor(keep, dtype=torch.long))
        y = self.y[mask]
        if relabel:
            top = max([*keep, int(self.y.max()) if len(self.y) else 0]) + 1
            table = torch.full((top,), -1, dtype=torch.long)
            table[torch.tensor(keep)] = torch.arange(len(keep))
            y = table[y]
        return ImageSet(self.x[mask], y)

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0):
        """A DataLoader over (x, y); shuffling draws from its own generator seeded by `seed`."""
        from torch.utils.data import DataLoader, TensorDataset

        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(
            TensorDataset(self.x, self.y),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
        )


@dataclass
class ImageSplits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int
    channels: int
    size: int
    name: str
    class_names: list[str]
    # CIFAR-100 only: the superclass (coarse label, 0..19) of every fine class, for the
    # superclass splits knowledge-amalgamation papers use
    fine_to_coarse: list[int] | None = None
    coarse_names: list[str] | None = field(default=None)


def load_images(
    name: str,
    root: str | None = None,
    *,
    seed: int = 0,
    size: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> ImageSplits:
    """Load `name` (one of DATASETS) from `root` (not needed for digits), resized to `size`
    (None: the native size) with bilinear interpolation."""
    if name not in DATASETS:
        raise ConfigError("data.name", name, "expected one of " + ", ".join(DATASETS))
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError("data.val_fraction", val_fraction, "expected a value in [0, 1)")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError("data.test_fraction", test_fraction, "expected a value in (0, 1)")
    if size is not None and size < 4:
        raise ConfigError("data.size", size, "expected an image size of at least 4 pixels")
    extra: dict = {}
    if name == "digits":
        x, y = _digits()
        x_train, y_train, x_test, y_test = _stratified_holdout(x, y, test_fraction, seed)
        names = [str(c) for c in range(10)]
    else:
        if root is None:
            raise ConfigError("data.root", None, f"{name} is read from a local folder", _hint(name))
        base = Path(root).expanduser()
        if not base.exists():
            raise ConfigError("data.root", root, "expected an existing local path", _hint(name))
        if name in ("mnist", "fashion_mnist"):
            (x_train, y_train), (x_test, y_test) = _idx_pair(base, name)
            names = _FASHION_NAMES if name == "fashion_mnist" else [str(c) for c in range(10)]
        elif name == "cifar10":
            x_train, y_train, x_test, y_test = _cifar10(base)
            names = list(_CIFAR10_NAMES)
        elif name == "cifar100":
            x_train, y_train, x_test, y_test, names, extra = _cifar100(base)
        else:
            x_train, y_train, x_test, y_test = _svhn(base)
            names = [str(c) for c in range(10)]
    x_train, y_train, x_val, y_val = _stratified_holdout(x_train, y_train, val_fraction, seed + 1)
    native = int(x_train.shape[-1])
    target = native if size is None else int(size)

    def to_set(x: np.ndarray, y: np.ndarray) -> ImageSet:
        images = torch.from_numpy(np.ascontiguousarray(x)).float()
        return ImageSet(_resize(images, target), torch.from_numpy(y.astype(np.int64)))

    return ImageSplits(
        train=to_set(x_train, y_train),
        val=to_set(x_val, y_val),
        test=to_set(x_test, y_test),
        num_classes=len(names),
        channels=int(x_train.shape[1]),
        size=target,
        name=name,
        class_names=names,
        **extra,
    )


def _hint(name: str) -> str:
    files = {
        "mnist": "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
        "fashion_mnist": "the same four idx files as MNIST",
        "cifar10": "cifar-10-batches-py/ with data_batch_1..5 and test_batch",
        "cifar100": "cifar-100-python/ with train, test and meta",
        "svhn": "train_32x32.mat and test_32x32.mat",
    }[name]
    return f"expected {files}; nothing is downloaded"


def _resize(x: Tensor, size: int) -> Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x.contiguous()
    out = [
        F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False,
            antialias=size < chunk.shape[-1],
        ).clamp_(0.0, 1.0)
        for chunk in x.split(4096)
    ]  # fmt: skip
    return torch.cat(out)


def _stratified_holdout(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(x_keep, y_keep, x_held, y_held): a stratified random `fraction` held out, by seed."""
    if fraction <= 0.0:
        return x, y, x[:0], y[:0]
    from sklearn.model_selection import train_test_split

    keep, held = train_test_split(
        np.arange(len(y)), test_size=fraction, random_state=seed, stratify=y
    )
    keep, held = np.sort(keep), np.sort(held)
    return x[keep], y[keep], x[held], y[held]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]  # pixel values are 0..16
    return x, bunch.target.astype(np.int64)


def _find(base: Path, names: list[str], subdirs: list[str]) -> Path | None:
    for sub in ["", *subdirs]:
        for n in names:
            p = base / sub / n if sub else base / n
            if p.is_file():
                return p
    return None


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"{path}: unreadable ({err}); expected an idx file, gzipped or not"
        ) from None
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes, too short for an idx header")
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte, the only type MNIST uses
        raise ConfigError("data.root", str(path), "expected an idx file of unsigned bytes")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{path}: truncated idx header ({len(data)} bytes, {ndim} dimensions)")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{path}: {len(data)} bytes but the idx header {dims} needs {expected} "
            f"({'truncated' if len(data) < expected else 'trailing bytes'})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_counts(x: np.ndarray, y: np.ndarray, images: Path | str, labels: Path | str) -> None:
    """Images and labels must pair up: a mismatch would otherwise be cut silently by the split."""
    if len(x) != len(y):
        where = str(images) if str(images) == str(labels) else f"{images} and {labels}"
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels; expected as many of each")


def _idx_pair(base: Path, name: str):
    raw = "FashionMNIST" if name == "fashion_mnist" else "MNIST"
    subdirs = ["raw", f"{raw}/raw", raw, name]
    out = []
    for split in ("train", "test"):
        arrays, paths = [], []
        for stem in _IDX_FILES[split]:
            # the files are also distributed as train-images.idx3-ubyte
            variants = [stem, stem + ".gz", stem.replace("-idx", ".idx"),
                        stem.replace("-idx", ".idx") + ".gz"]  # fmt: skip
            path = _find(base, variants, subdirs)
            if path is None:
                raise ConfigError("data.root", str(base), f"{stem} not found", _hint(name))
            arrays.append(_read_idx(path))
            paths.append(path)
        images, labels = arrays
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"{paths[0]} / {paths[1]}: idx shapes {images.shape} and {labels.shape}; "
                "expected images [N, H, W] and labels [N]"
            )
        _check_counts(images, labels, *paths)
        out.append(((images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)))
    return out


# what a CIFAR batch (a dict of bytes keys, numpy arrays and lists) needs to be rebuilt; any
# other global in the file is refused, so a hostile pickle cannot run code (never pickle.load)
_PICKLE_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *(
        (f"numpy.{core}.multiarray", f)
        for core in ("core", "_core")
        for f in ("_reconstruct", "scalar")
    ),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            out = _SafeUnpickler(f, encoding="bytes").load()
    except Exception as err:  # a truncated or hostile file fails in many ways; all mean the same
        raise DataError(
            f"{path}: not a readable CIFAR batch ({type(err).__name__}: {err}); expected a "
            "pickled dict of numpy arrays and lists"
        ) from None
    if not isinstance(out, dict):
        raise DataError(f"{path}: holds a {type(out).__name__}, expected a dict (a CIFAR batch)")
    return out


def _field(batch: dict, key: bytes, path: Path):
    if key not in batch:
        have = ", ".join(
            sorted(k.decode(errors="replace") if isinstance(k, bytes) else str(k) for k in batch)
        )
        raise DataError(f"{path}: no '{key.decode()}' in the batch (has: {have})")
    return batch[key]


def _cifar_images(batch: dict, path: Path) -> np.ndarray:
    data = np.asarray(_field(batch, b"data", path))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' has shape {data.shape}, expected [N, 3072]")
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0


def _cifar_labels(batch: dict, key: bytes, path: Path, n: int) -> np.ndarray:
    y = np.asarray(_field(batch, key, path)).reshape(-1).astype(np.int64)
    _check_counts(np.empty(n), y, path, path)
    return y


def _cifar10(base: Path):
    folder = base / "cifar-10-batches-py" if (base / "cifar-10-batches-py").is_dir() else base
    files = [folder / f"data_batch_{i}" for i in range(1, 6)] + [folder / "test_batch"]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ConfigError("data.root", str(base), f"missing {missing}", _hint("cifar10"))
    xs, ys = [], []
    for f in files:
        batch = _unpickle(f)
        xs.append(_cifar_images(batch, f))
        ys.append(_cifar_labels(batch, b"labels", f, len(xs[-1])))
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def _cifar100(base: Path):
    folder = base / "cifar-100-python" if (base / "cifar-100-python").is_dir() else base
    files = [folder / n for n in ("train", "test", "meta")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ConfigError("data.root", str(base), f"missing {missing}", _hint("cifar100"))
    train, test, meta = (_unpickle(f) for f in files)
    x_train, x_test = _cifar_images(train, files[0]), _cifar_images(test, files[1])
    fine = _cifar_labels(train, b"fine_labels", files[0], len(x_train))
    coarse = _cifar_labels(train, b"coarse_labels", files[0], len(x_train))
    y_test = _cifar_labels(test, b"fine_labels", files[1], len(x_test))
    fine_names = [n.decode() for n in _field(meta, b"fine_label_names", files[2])]
    coarse_names = [n.decode() for n in _field(meta, b"coarse_label_names", files[2])]
    present = set(np.unique(fine).tolist())
    mapping = [int(coarse[fine == c][0]) if c in present else -1 for c in range(len(fine_names))]
    extra = {"fine_to_coarse": mapping, "coarse_names": coarse_names}
    return x_train, fine, x_test, y_test, fine_names, extra


def _svhn(base: Path):
    from scipy.io import loadmat

    out = []
    for split in ("train", "test"):
        path = _find(base, [f"{split}_32x32.mat"], ["svhn", "SVHN"])
        if path is None:
            raise ConfigError("data.root", str(base), f"{split}_32x32.mat not found", _hint("svhn"))
        try:
            mat = loadmat(path)
        except Exception as err:  # scipy raises ValueError, TypeError, MatReadError... by damage
            raise DataError(
                f"{path}: not a readable .mat file ({type(err).__name__}: {err})"
            ) from None
        for key in ("X", "y"):
            if key not in mat:
                raise DataError(f"{path}: no '{key}' array; expected X [32, 32, 3, N] and y [N, 1]")
        if mat["X"].ndim != 4 or mat["X"].shape[:3] != (32, 32, 3):
            raise DataError(f"{path}: X has shape {mat['X'].shape}, expected [32, 32, 3, N]")
        x = mat["X"].transpose(3, 2, 0, 1).astype(np.float32) / 255.0  # (32,32,3,N) -> NCHW
        y = mat["y"].reshape(-1).astype(np.int64)
        _check_counts(x, y, path, path)
        out += [x, np.where(y == 10, 0, y)]  # the digit 0 is stored as label 10
    return tuple(out)
