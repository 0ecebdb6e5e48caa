"""One-class protocols: which images train, validate and test. Reproducible from the seed.

- paper: pool the normal images of train and test, shuffle with the seed, split 80/20, and put
  every anomalous image in test (the reference GANomaly protocol, comparable with the paper).
- given: the dataset's own train/test split, as MVTec AD is meant to be used.
Both hold out a validation split of training normals for calibration; test labels are never
used for calibration or model selection.
"""

from __future__ import annotations

import numpy as np

from .data.images import DataError
from .data.splits import DataSplits, ImageSet

PROTOCOLS = ("paper", "given")


def anomaly_flags(classes: np.ndarray, anomaly_classes, normal_classes) -> np.ndarray:
    """1 where the class is anomalous: the listed anomaly classes, or everything not normal."""
    if anomaly_classes:
        return np.isin(classes, list(anomaly_classes)).astype(np.int64)
    return (~np.isin(classes, list(normal_classes))).astype(np.int64)


def hold_out(train: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"--val-fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(seed + 1).permutation(len(train))
    n_val = int(round(len(train) * fraction))
    return train.subset(np.sort(order[n_val:])), train.subset(np.sort(order[:n_val]))


def _cap(train: ImageSet, max_train: int | None, seed: int) -> ImageSet:
    if max_train is None or len(train) <= max_train:
        return train
    keep = np.random.default_rng(seed + 2).permutation(len(train))[:max_train]
    return train.subset(np.sort(keep))


def paper_split(pool: ImageSet, labels: np.ndarray, seed: int, train_fraction: float = 0.8):
    """Normal images shuffled with the seed and split train/test; every anomaly in test."""
    normal = np.flatnonzero(labels == 0)
    anomalous = np.flatnonzero(labels == 1)
    normal = normal[np.random.default_rng(seed).permutation(len(normal))]
    n_train = int(round(len(normal) * train_fraction))
    train = pool.subset(np.sort(normal[:n_train]))
    test_index = np.concatenate([np.sort(normal[n_train:]), anomalous])
    test = pool.subset(test_index)
    test.labels = labels[test_index]
    test.defect_types = ["good" if flag == 0 else f"class_{c}" for flag, c in zip(test.labels, test.classes)]
    return train, test


def make_splits(train: ImageSet, test: ImageSet | None, *, protocol: str, class_names=None,
                anomaly_classes=(), normal_classes=(), seed: int = 0, val_fraction: float = 0.1,
                max_train: int | None = None, info: dict | None = None) -> DataSplits:
    """Apply a protocol to a source's images. Class datasets carry `classes`; given-split
    datasets (MVTec layout, npz) carry anomaly `labels` on the test set already."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose {' or '.join(PROTOCOLS)}")
    info = dict(info or {}, protocol=protocol, seed=seed, val_fraction=val_fraction, max_train=max_train)
    if class_names is not None:
        known = set(range(len(class_names)))
        if not anomaly_classes and not normal_classes:
            raise DataError(f"say which class is the anomaly (--anomaly-class) or the normal one "
                            f"(--normal-class); classes are {_describe(class_names)}")
        for c in list(anomaly_classes) + list(normal_classes):
            if c not in known:
                raise DataError(f"class {c!r} does not exist; classes are {_describe(class_names)}")
        info.update(anomaly_classes=[class_names[c] for c in anomaly_classes],
                    normal_classes=[class_names[c] for c in normal_classes])
        if protocol == "paper":
            pool = ImageSet.concat(train, test) if test is not None else train
            labels = anomaly_flags(pool.classes, anomaly_classes, normal_classes)
            train, test = paper_split(pool, labels, seed)
        else:
            train = train.subset(np.flatnonzero(anomaly_flags(train.classes, anomaly_classes, normal_classes) == 0))
            if test is not None:
                test.labels = anomaly_flags(test.classes, anomaly_classes, normal_classes)
                test.defect_types = ["good" if f == 0 else f"class_{c}" for f, c in zip(test.labels, test.classes)]
    elif protocol == "paper":
        raise DataError("the paper protocol needs a labelled class dataset; use --protocol given "
                        "for train/test folders or npz files")
    if len(train) == 0:
        raise DataError("no normal training images after the split; check --anomaly-class/--normal-class")
    train, validation = hold_out(train, val_fraction, seed)
    train = _cap(train, max_train, seed)
    test = test if test is not None else ImageSet(array=np.zeros((0, 1, 1, 1), np.uint8))
    splits = DataSplits(train, validation, test, info)
    splits.info.update(n_train=len(train), n_validation=len(validation), n_test=len(test),
                       n_test_anomalous=int(test.labels.sum()))
    return splits


def _describe(class_names) -> str:
    return ", ".join(f"{i}={name}" for i, name in enumerate(class_names))
