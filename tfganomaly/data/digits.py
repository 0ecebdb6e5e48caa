"""The built-in dataset: scikit-learn's real handwritten digits (1,797 8x8 images), no download."""

from __future__ import annotations

import numpy as np

from .splits import ImageSet

CLASS_NAMES = [str(d) for d in range(10)]


def load_digits_source():
    """All digits as one pool (there is no official test split; the paper protocol pools anyway)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return ImageSet(array=images, classes=digits.target.astype(np.int64)), None, CLASS_NAMES
