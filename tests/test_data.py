import gzip
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_data
from tfganomaly.data import DatasetSpec, ImageSpec, load_dataset, load_image_file
from tfganomaly.data.idx import read_idx
from tfganomaly.errors import DataError, MetricError
from tfganomaly.metrics import auroc

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_idx_class_counts():
    root = shared_data("mnist")
    labels = read_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"))
    assert np.bincount(labels).tolist() == MNIST_TRAIN
    assert np.bincount(read_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"))).tolist() == MNIST_TEST
    assert read_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz")).shape == (10000, 28, 28)


def test_mnist_paper_split_sizes_and_reproducibility():
    spec = DatasetSpec(dataset="mnist", data_dir=shared_data("mnist"), anomaly_class=("2",), seed=3)
    a, b = load_dataset(spec), load_dataset(spec)
    normals = 70000 - (5958 + 1032)
    n_train = round(normals * 0.8)
    assert len(a.train) + len(a.validation) == n_train
    assert len(a.validation) == round(n_train * 0.1)
    assert len(a.test) == normals - n_train + 5958 + 1032
    assert int(a.test.labels.sum()) == 5958 + 1032
    assert (a.train.classes != 2).all() and (a.validation.classes != 2).all()
    np.testing.assert_array_equal(a.test.array, b.test.array)
    np.testing.assert_array_equal(a.train.array, b.train.array)
    c = load_dataset(DatasetSpec(dataset="mnist", data_dir=shared_data("mnist"), anomaly_class=("2",), seed=4))
    assert not np.array_equal(a.test.array, c.test.array)


def test_fashion_mnist_through_tfds_prepared_offline(tmp_path):
    manual = shared_data("fashion_mnist")
    spec = DatasetSpec(dataset="tfds:fashion_mnist", data_dir=str(tmp_path), manual_dir=manual,
                       anomaly_class=("Sandal",))
    splits = load_dataset(spec)
    assert len(splits.train) + len(splits.validation) == round(63000 * 0.8)
    assert int(splits.test.labels.sum()) == 7000
    # prepared once, it now loads without --manual-dir
    again = load_dataset(DatasetSpec(dataset="tfds:fashion_mnist", data_dir=str(tmp_path), anomaly_class=("5",)))
    assert len(again.test) == len(splits.test)


def test_tfds_not_prepared_names_the_offline_command(tmp_path):
    with pytest.raises(DataError, match="--manual-dir"):
        load_dataset(DatasetSpec(dataset="tfds:fashion_mnist", data_dir=str(tmp_path), anomaly_class=("1",)))
    with pytest.raises(DataError, match="unknown TFDS dataset"):
        load_dataset(DatasetSpec(dataset="tfds:no_such_dataset_xyz", data_dir=str(tmp_path)))


def test_magnetic_tile_mvtec_layout():
    root = shared_data("magnetic_tile")
    splits = load_dataset(DatasetSpec(dataset="folder", data_dir=root, val_fraction=0.0))
    assert len(splits.train) == 761 and splits.info["protocol"] == "given"
    test = splits.test
    assert int((test.labels == 0).sum()) == 191 and int(test.labels.sum()) == 392
    counts = {d: test.defect_types.count(d) for d in set(test.defect_types)}
    assert counts == {"good": 191, "blowhole": 115, "break": 85, "crack": 57, "fray": 32, "uneven": 103}
    for path, mask, label in zip(test.paths, test.mask_paths, test.labels):
        if label:
            stem = os.path.splitext(os.path.basename(path))[0]
            assert mask is not None and os.path.basename(mask).startswith(stem + "_mask")
        else:
            assert mask is None
    batch = next(iter(test.dataset(ImageSpec(64, 1), 16)))
    assert batch.shape == (16, 64, 64, 1) and batch.dtype == tf.uint8


def _write(path, array, fmt="png"):
    array = np.asarray(array)
    data = tf.io.encode_png(array).numpy() if fmt == "png" else tf.io.encode_jpeg(array).numpy()
    with open(path, "wb") as f:
        f.write(data)


def test_any_channels_and_depth_become_the_model_input(tmp_path):
    rng = np.random.default_rng(0)
    cases = {"grey.png": rng.integers(0, 256, (40, 50, 1), dtype=np.uint8),
             "ga.png": rng.integers(0, 256, (40, 50, 2), dtype=np.uint8),
             "rgb.jpg": rng.integers(0, 256, (30, 20, 3), dtype=np.uint8),
             "rgba.png": rng.integers(0, 256, (64, 64, 4), dtype=np.uint8),
             "deep.png": (rng.integers(0, 65536, (20, 20, 1))).astype(np.uint16)}
    for name, array in cases.items():
        _write(str(tmp_path / name), array, "jpeg" if name.endswith("jpg") else "png")
        for nc in (1, 3):
            image = load_image_file(str(tmp_path / name), ImageSpec(32, nc))
            assert image.shape == (32, 32, nc) and image.dtype == np.uint8
    deep = load_image_file(str(tmp_path / "deep.png"), ImageSpec(32, 1, "nearest"))
    assert deep.max() > 200  # 16-bit scaled to 8-bit, not truncated to its low byte


def _class_folders(root, n=12, classes=("ok", "scratch")):
    rng = np.random.default_rng(1)
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(n):
            _write(str(root / c / f"{i}.png"), rng.integers(0, 256, (20, 20, 1), dtype=np.uint8))


def test_class_per_folder_layout(tmp_path):
    _class_folders(tmp_path)
    splits = load_dataset(DatasetSpec(dataset="folder", data_dir=str(tmp_path), normal_class=("ok",)))
    assert splits.info["protocol"] == "paper" and int(splits.test.labels.sum()) == 12
    with pytest.raises(DataError, match="class 'dent' does not exist; classes are 0=ok, 1=scratch"):
        load_dataset(DatasetSpec(dataset="folder", data_dir=str(tmp_path), anomaly_class=("dent",)))


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "d.npz")
    np.savez(path, x_train=rng.integers(0, 256, (50, 20, 20), dtype=np.uint8),
             x_test=rng.integers(0, 256, (10, 20, 20, 1), dtype=np.uint8), y_test=np.array([0, 1] * 5))
    splits = load_dataset(DatasetSpec(dataset="npz", data_dir=path))
    assert len(splits.train) == 45 and len(splits.validation) == 5 and int(splits.test.labels.sum()) == 5
    np.savez(path, images=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DataError, match="no x_train"):
        load_dataset(DatasetSpec(dataset="npz", data_dir=path))


@pytest.mark.parametrize("make,fragment", [
    (lambda d: DatasetSpec(dataset="folder", data_dir=str(d / "missing")), "does not exist"),
    (lambda d: DatasetSpec(dataset="folder", data_dir=str(d)), "no images found"),
    (lambda d: DatasetSpec(dataset="mnist", data_dir=str(d)), "not found in"),
    (lambda d: DatasetSpec(dataset="imagenet"), "unknown dataset"),
    (lambda d: DatasetSpec(dataset="digits", anomaly_class=("11",)), "class '11' does not exist"),
])
def test_bad_data_gives_one_clear_line(tmp_path, make, fragment):
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset(make(tmp_path))
    assert "\n" not in str(info.value)


def test_corrupt_files_are_named_or_skipped(tmp_path):
    root = tmp_path / "ds"
    os.makedirs(root / "train" / "good")
    _class_folders(root / "train", n=10, classes=("good",))
    (root / "train" / "good" / "zero.png").write_bytes(b"")
    (root / "train" / "good" / "text.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="zero.png is empty|text.png is not a PNG"):
        load_dataset(DatasetSpec(dataset="folder", data_dir=str(root)))
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        splits = load_dataset(DatasetSpec(dataset="folder", data_dir=str(root), skip_bad_images=True))
    assert len(splits.train) + len(splits.validation) == 10


def test_single_class_test_set_says_so():
    with pytest.raises(MetricError, match="all 3 are normal"):
        auroc([0, 0, 0], [0.1, 0.2, 0.3])
