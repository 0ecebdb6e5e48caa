"""Image folders: the MVTec AD layout (train/good, test/<defect>, ground_truth/<defect>) and the
class-per-folder (ImageFolder) layout. Files are listed here and decoded lazily by tf.data."""

from __future__ import annotations

import os

import numpy as np

from .images import DataError, list_images
from .splits import ImageSet

MVTEC_HINT = ("expected the MVTec AD layout ROOT/train/good/*.png|jpg, ROOT/test/<good|defect>/*, "
              "ROOT/ground_truth/<defect>/<stem>_mask.png, or one sub-folder per class")


def is_mvtec_layout(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "train", "good"))


def _subdirs(path: str) -> list[str]:
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))


def _mask_for(root: str, defect: str, image_path: str):
    stem = os.path.splitext(os.path.basename(image_path))[0]
    folder = os.path.join(root, "ground_truth", defect)
    for ext in (".png", ".jpg", ".bmp"):
        path = os.path.join(folder, stem + "_mask" + ext)
        if os.path.isfile(path):
            return path
    return None


def load_mvtec(root: str):
    train_paths = list_images(os.path.join(root, "train", "good"))
    if not train_paths:
        raise DataError(f"no images found in {os.path.join(root, 'train', 'good')}; {MVTEC_HINT}")
    test_root = os.path.join(root, "test")
    paths, labels, defects, masks = [], [], [], []
    for defect in _subdirs(test_root) if os.path.isdir(test_root) else []:
        for path in list_images(os.path.join(test_root, defect)):
            paths.append(path)
            labels.append(0 if defect == "good" else 1)
            defects.append(defect)
            masks.append(None if defect == "good" else _mask_for(root, defect, path))
    test = ImageSet(paths=paths, labels=np.asarray(labels, np.int64), defect_types=defects,
                    mask_paths=masks) if paths else None
    return ImageSet(paths=train_paths), test, None


def load_class_folders(root: str):
    classes = _subdirs(root)
    paths, ids = [], []
    for i, name in enumerate(classes):
        files = list_images(os.path.join(root, name))
        paths += files
        ids += [i] * len(files)
    if not paths:
        raise DataError(f"no images found under {root}; {MVTEC_HINT}")
    return ImageSet(paths=paths, classes=np.asarray(ids, np.int64)), None, classes


def load_folder_source(root: str | None):
    if not root:
        raise DataError("--data-dir is required for --dataset folder")
    if not os.path.isdir(root):
        raise DataError(f"data directory {root} does not exist")
    return load_mvtec(root) if is_mvtec_layout(root) else load_class_folders(root)
