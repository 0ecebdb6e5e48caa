"""MNIST-style idx files (the official `.gz` distribution format), read without any download."""

from __future__ import annotations

import gzip
import os

import numpy as np

from .images import DataError
from .splits import ImageSet

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
_DTYPES = {0x08: np.uint8}


def read_idx(path: str) -> np.ndarray:
    """Parse one idx file (optionally gzipped): 4-byte magic, big-endian dims, raw data."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read idx file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{path} is not a uint8 idx file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{path} is not a valid idx file (truncated header)")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims))
    if len(data) - header != count:
        raise DataError(f"{path} holds {len(data) - header} bytes of data but its header "
                        f"promises {count} for shape {dims}; the file is truncated or corrupt")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _find(directory: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"{stem}[.gz] not found in {directory}; the directory must hold the four "
                    f"official idx files ({', '.join(s for pair in IDX_FILES.values() for s in pair)})")


def load_idx_source(name: str, directory: str | None):
    if not directory:
        raise DataError(f"--data-dir is required for {name}: a directory with the four idx .gz files")
    if not os.path.isdir(directory):
        raise DataError(f"data directory {directory} does not exist")
    sets = []
    for split in ("train", "test"):
        images_stem, labels_stem = IDX_FILES[split]
        images = read_idx(_find(directory, images_stem))
        labels = read_idx(_find(directory, labels_stem))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"idx files for the {split} split in {directory} disagree: "
                            f"images {images.shape}, labels {labels.shape}")
        sets.append(ImageSet(array=images, classes=labels.astype(np.int64)))
    return sets[0], sets[1], CLASS_NAMES[name]
