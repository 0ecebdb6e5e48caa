"""A `.npz` file with x_train (normal only) and optionally x_test / y_test (1 = anomaly)."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from .images import DataError
from .splits import ImageSet


def _uint8_images(array: np.ndarray, key: str, path: str) -> np.ndarray:
    if array.ndim not in (3, 4) or array.dtype != np.uint8:
        raise DataError(f"{key} in {path} must be uint8 images shaped NHW or NHWC, "
                        f"got {array.dtype} {array.shape}")
    return array


def load_npz_source(path: str | None):
    if not path or not os.path.isfile(path):
        raise DataError(f"npz file {path} not found; pass --data-dir FILE.npz holding x_train "
                        f"(and optionally x_test, y_test)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {path} as an npz file: {e}") from None
    if "x_train" not in arrays:
        raise DataError(f"{path} has no x_train array (it has {sorted(arrays)})")
    train = ImageSet(array=_uint8_images(arrays["x_train"], "x_train", path))
    test = None
    if "x_test" in arrays:
        x_test = _uint8_images(arrays["x_test"], "x_test", path)
        if "y_test" not in arrays or len(arrays["y_test"]) != len(x_test):
            raise DataError(f"{path} has x_test but no y_test of the same length (1 = anomaly)")
        labels = arrays["y_test"].astype(np.int64).reshape(-1)
        if not np.isin(labels, (0, 1)).all():
            raise DataError(f"y_test in {path} must hold 0 (normal) and 1 (anomaly) only")
        test = ImageSet(array=x_test, labels=labels)
    return train, test, None
