"""celine.vision.datasets: the built-in digits splits and the real file formats (written here as
tiny files in the standard layouts), with clear errors for missing files."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from celine.errors import ConfigError
from celine.vision.datasets import ImageSet, load_images


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", seed=0, size=16)


def test_digits_splits_are_complete_stratified_and_in_range(digits):
    sizes = len(digits.train) + len(digits.val) + len(digits.test)
    assert sizes == 1797
    assert len(digits.test) == pytest.approx(0.2 * 1797, abs=1)
    assert digits.train.x.shape[1:] == (1, 16, 16) and digits.train.x.dtype == torch.float32
    assert digits.num_classes == 10 and digits.channels == 1 and digits.size == 16
    for part in (digits.train, digits.val, digits.test):
        assert float(part.x.min()) >= 0.0 and float(part.x.max()) <= 1.0
        counts = torch.bincount(part.y, minlength=10).float()
        assert counts.min() >= 0.8 * counts.mean()  # stratified: every class nearly equal


def test_digits_split_is_deterministic_by_seed_and_native_size_is_8():
    a, b = load_images("digits", seed=3), load_images("digits", seed=3)
    assert torch.equal(a.test.x, b.test.x) and a.size == 8
    c = load_images("digits", seed=4)
    assert not torch.equal(a.test.y, c.test.y)


def test_subset_classes_and_seeded_loader(digits):
    part = digits.train.classes([5, 6, 7, 8, 9])
    assert set(part.y.tolist()) == {0, 1, 2, 3, 4}
    assert len(part) == int((digits.train.y >= 5).sum())
    kept = digits.train.classes([3, 1], relabel=False)
    assert set(kept.y.tolist()) == {1, 3}
    assert len(digits.train.subset([0, 2, 4])) == 3
    first = [y for _, y in digits.train.loader(64, shuffle=True, seed=7)]
    again = [y for _, y in digits.train.loader(64, shuffle=True, seed=7)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], digits.train.y[:64])


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def test_mnist_idx_files_are_read_gzipped_or_not(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem, n, gz in (("train", 50, True), ("t10k", 20, False)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = np.arange(n) % 10
        suffix = ".gz" if gz else ""
        _write_idx(raw / f"{stem}-images-idx3-ubyte{suffix}", images, gz)
        _write_idx(raw / f"{stem}-labels-idx1-ubyte{suffix}", labels, gz)
    splits = load_images("mnist", str(tmp_path), val_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (40, 10, 20)
    assert splits.train.x.shape[1:] == (1, 28, 28) and splits.num_classes == 10
    assert torch.equal(splits.test.y, torch.arange(20) % 10)
    assert float(splits.test.x.max()) <= 1.0


def test_cifar10_pickles_and_svhn_mat_are_read(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
                 b"labels": list(range(10))}  # fmt: skip
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    splits = load_images("cifar10", str(tmp_path), size=16, val_fraction=0.2)
    assert splits.train.x.shape[1:] == (3, 16, 16) and len(splits.test) == 10
    assert splits.class_names[0] == "airplane"

    from scipy.io import savemat

    for split in ("train", "test"):
        savemat(tmp_path / f"{split}_32x32.mat",
                {"X": rng.integers(0, 256, (32, 32, 3, 20), dtype=np.uint8),
                 "y": (np.arange(20) % 10 + 1).reshape(-1, 1)})  # fmt: skip
    svhn = load_images("svhn", str(tmp_path), val_fraction=0.0 + 0.5)
    assert svhn.test.x.shape == (20, 3, 32, 32)
    assert set(svhn.test.y.tolist()) == set(range(10))  # label 10 is the digit 0


@pytest.mark.parametrize(
    "name, expected", [("cifar10", "data_batch_1"), ("mnist", "t10k-images"), ("svhn", "32x32.mat")]
)
def test_missing_files_name_the_key_the_path_and_the_expected_files(tmp_path, name, expected):
    with pytest.raises(ConfigError) as err:
        load_images(name, str(tmp_path))
    assert err.value.key == "data.root" and str(tmp_path) in str(err.value)
    assert expected in str(err.value)
    with pytest.raises(ConfigError, match="data.name"):
        load_images("imagenet")
    with pytest.raises(ConfigError, match="data.root"):
        load_images(name, None)


def test_image_set_checks_its_lengths():
    with pytest.raises(ValueError):
        ImageSet(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.long))


# ---- damaged files: one DataError line naming the file, never a silent cut or a traceback ----

from celine.errors import DataError  # noqa: E402


def _mnist_folder(tmp_path, n_train=40, n_train_labels=40, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for stem, n, n_lab in (("train", n_train, n_train_labels), ("t10k", 20, 20)):
        _write_idx(
            tmp_path / f"{stem}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), gz
        )
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte{suffix}", np.arange(n_lab) % 10, gz)
    return tmp_path


def _one_line_naming(err, path):
    text = str(err.value)
    assert str(path) in text and "\n" not in text, text
    return text


def test_idx_image_label_count_mismatch_is_an_error_naming_both_files(tmp_path):
    # 40 images with 39 labels used to load silently as 29 + 10 (the split cut the extra image)
    _mnist_folder(tmp_path, n_train=40, n_train_labels=39)
    with pytest.raises(DataError) as err:
        load_images("mnist", str(tmp_path))
    text = _one_line_naming(err, tmp_path / "train-images-idx3-ubyte")
    assert "40 images but 39 labels" in text and "train-labels-idx1-ubyte" in text


def test_truncated_idx_and_corrupt_gzip_name_the_file(tmp_path):
    _mnist_folder(tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])  # the download stopped early
    with pytest.raises(DataError) as err:
        load_images("mnist", str(tmp_path))
    assert "truncated" in _one_line_naming(err, bad)
    bad.write_bytes(bad.read_bytes()[:10])  # not even a whole header
    with pytest.raises(DataError) as err:
        load_images("mnist", str(tmp_path))
    _one_line_naming(err, bad)

    (tmp_path / "gz").mkdir()
    gz = _mnist_folder(tmp_path / "gz", gz=True)
    bad_gz = gz / "train-labels-idx1-ubyte.gz"
    bad_gz.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError) as err:
        load_images("mnist", str(gz))
    _one_line_naming(err, bad_gz)
    bad_gz.write_bytes(gzip.compress((np.arange(40) % 10).astype(np.uint8).tobytes())[:15])
    with pytest.raises(DataError) as err:  # a gzip stream cut short
        load_images("mnist", str(gz))
    _one_line_naming(err, bad_gz)


def _cifar10_folder(tmp_path, **replace):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
            b"labels": list(range(10)),
        }
        with open(folder / name, "wb") as f:
            f.write(replace.get(name, pickle.dumps(batch, protocol=2)))
    return folder


class _Boom:
    def __reduce__(self):  # what a hostile pickle does: call any function on load
        return (print, ("unpickled!",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_load_without_unpickling_arbitrary_objects(tmp_path, protocol, capsys):
    rng = np.random.default_rng(0)
    good = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
    folder = _cifar10_folder(tmp_path, test_batch=pickle.dumps(good, protocol=protocol))
    assert len(load_images("cifar10", str(tmp_path), val_fraction=0.2).test) == 10  # any protocol
    hostile = pickle.dumps({b"data": good[b"data"], b"labels": _Boom()}, protocol=protocol)
    (folder / "test_batch").write_bytes(hostile)
    with pytest.raises(DataError) as err:
        load_images("cifar10", str(tmp_path))
    assert "refused global" in _one_line_naming(err, folder / "test_batch")  # builtins.print
    assert "unpickled!" not in capsys.readouterr().out


def test_corrupt_cifar_batch_missing_labels_and_count_mismatch_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
    cases = {
        "truncated": pickle.dumps({b"data": data, b"labels": list(range(10))})[:-200],
        "no 'labels'": pickle.dumps({b"data": data}),
        "10 images but 9 labels": pickle.dumps({b"data": data, b"labels": list(range(9))}),
        "expected a dict": pickle.dumps([1, 2, 3]),
    }
    for i, (expected, blob) in enumerate(cases.items()):
        folder = _cifar10_folder(tmp_path / str(i), data_batch_3=blob)
        with pytest.raises(DataError) as err:
            load_images("cifar10", str(tmp_path / str(i)))
        text = _one_line_naming(err, folder / "data_batch_3")
        assert expected in text or expected == "truncated", text


def test_cifar100_synthetic_superclass_path_and_missing_fine_labels(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine = np.arange(200) % 100
    coarse = fine // 5
    for name, n in (("train", 200), ("test", 100)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": fine[:n].tolist(), b"coarse_labels": coarse[:n].tolist()}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}  # fmt: skip
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    splits = load_images("cifar100", str(tmp_path), val_fraction=0.5)
    assert splits.fine_to_coarse == [c // 5 for c in range(100)] and splits.num_classes == 100
    (folder / "test").write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8)}))
    with pytest.raises(DataError) as err:
        load_images("cifar100", str(tmp_path), val_fraction=0.5)
    assert "fine_labels" in _one_line_naming(err, folder / "test")


def test_corrupt_svhn_mat_and_count_mismatch_name_the_file(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        savemat(tmp_path / f"{split}_32x32.mat",
                {"X": rng.integers(0, 256, (32, 32, 3, 20), dtype=np.uint8),
                 "y": (np.arange(20) % 10 + 1).reshape(-1, 1)})  # fmt: skip
    bad = tmp_path / "test_32x32.mat"
    savemat(bad, {"X": rng.integers(0, 256, (32, 32, 3, 20), dtype=np.uint8),
                  "y": (np.arange(19) % 10 + 1).reshape(-1, 1)})  # fmt: skip
    with pytest.raises(DataError) as err:
        load_images("svhn", str(tmp_path))
    assert "20 images but 19 labels" in _one_line_naming(err, bad)
    bad.write_bytes(b"MATLAB 5.0 MAT-file, but then garbage" + bytes(50))
    with pytest.raises(DataError) as err:
        load_images("svhn", str(tmp_path))
    _one_line_naming(err, bad)
    bad.write_bytes((tmp_path / "train_32x32.mat").read_bytes()[:3000])  # cut short
    with pytest.raises(DataError) as err:
        load_images("svhn", str(tmp_path))
    _one_line_naming(err, bad)
