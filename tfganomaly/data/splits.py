"""The split object every data source returns, so everything downstream is source-agnostic."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import tensorflow as tf

from .images import DataError, ImageSpec, decode_image_bytes, image_header, prepare_array_image

CACHE_LIMIT_BYTES = 2 * 1024 ** 3  # resized images cached in memory below this size


@dataclasses.dataclass
class ImageSet:
    """Images held either as an in-memory uint8 array (native size) or as file paths
    (decoded on the fly), with one label (1 = anomaly), defect type and mask path per image."""

    array: np.ndarray | None = None
    paths: list | None = None
    labels: np.ndarray | None = None
    classes: np.ndarray | None = None
    defect_types: list | None = None
    mask_paths: list | None = None

    def __post_init__(self):
        n = len(self.array) if self.array is not None else len(self.paths or [])
        if self.array is not None and self.array.ndim == 3:
            self.array = self.array[..., None]
        if self.labels is None:
            self.labels = np.zeros(n, np.int64)
        if self.classes is None:
            self.classes = np.full(n, -1, np.int64)
        if self.defect_types is None:
            self.defect_types = ["good" if label == 0 else "anomaly" for label in self.labels]
        if self.mask_paths is None:
            self.mask_paths = [None] * n

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "ImageSet":
        index = np.asarray(index, np.int64)
        return ImageSet(
            array=self.array[index] if self.array is not None else None,
            paths=[self.paths[i] for i in index] if self.paths is not None else None,
            labels=self.labels[index], classes=self.classes[index],
            defect_types=[self.defect_types[i] for i in index],
            mask_paths=[self.mask_paths[i] for i in index])

    @staticmethod
    def concat(a: "ImageSet", b: "ImageSet") -> "ImageSet":
        if (a.array is None) != (b.array is None):
            raise ValueError("cannot pool in-memory images with file images")
        return ImageSet(
            array=np.concatenate([a.array, b.array]) if a.array is not None else None,
            paths=a.paths + b.paths if a.paths is not None else None,
            labels=np.concatenate([a.labels, b.labels]), classes=np.concatenate([a.classes, b.classes]),
            defect_types=a.defect_types + b.defect_types, mask_paths=a.mask_paths + b.mask_paths)

    def check_files(self, skip_bad: bool = False) -> "ImageSet":
        """Header-check every file: a bad one raises (naming it) or, with skip_bad, is dropped."""
        if self.paths is None:
            return self
        good, bad = [], 0
        for i, path in enumerate(self.paths):
            try:
                image_header(path)
                good.append(i)
            except DataError:
                if not skip_bad:
                    raise
                bad += 1
        if bad:
            warnings.warn(f"skipped {bad} unreadable image file(s) of {len(self.paths)}", stacklevel=2)
        return self.subset(good) if bad else self

    def dataset(self, spec: ImageSpec, batch_size: int, shuffle: bool = False, seed: int = 0,
                drop_remainder: bool = False) -> tf.data.Dataset:
        """A tf.data pipeline of uint8 (B, isize, isize, nc) batches: decode/resize in parallel,
        cache in memory when small, shuffle, batch, prefetch; large folders stream from disk."""
        if self.array is not None:
            ds = tf.data.Dataset.from_tensor_slices(self.array)
            ds = ds.map(lambda im: prepare_array_image(im, spec), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = tf.data.Dataset.from_tensor_slices(tf.constant(self.paths or [], tf.string))
            ds = ds.map(lambda p: decode_image_bytes(tf.io.read_file(p), spec),
                        num_parallel_calls=tf.data.AUTOTUNE)
        if len(self) * spec.isize * spec.isize * spec.nc <= CACHE_LIMIT_BYTES:
            ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(min(len(self), 10_000), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)

    def load(self, spec: ImageSpec, batch_size: int = 256) -> np.ndarray:
        """All images, preprocessed, as one uint8 array (for evaluation and pictures)."""
        chunks = [b.numpy() for b in self.dataset(spec, batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, spec.isize, spec.isize, spec.nc), np.uint8)


@dataclasses.dataclass
class DataSplits:
    """train (normal only), validation (held-out normals, for calibration and model selection)
    and test (labelled), plus what produced them."""

    train: ImageSet
    validation: ImageSet
    test: ImageSet
    info: dict

    def summary(self) -> str:
        t = self.test
        return (f"{self.info.get('dataset')} ({self.info.get('protocol')} protocol): "
                f"{len(self.train)} train, {len(self.validation)} validation, "
                f"{len(t)} test ({int((t.labels == 0).sum())} normal, {int((t.labels == 1).sum())} anomalous)")
