"""Any TFDS image-classification dataset, from prepared data or prepared offline from a manual dir."""

from __future__ import annotations

import numpy as np

from .images import DataError
from .splits import ImageSet


def _feature_keys(features):
    import tensorflow_datasets as tfds
    image = next((k for k, f in features.items() if isinstance(f, tfds.features.Image)), None)
    label = next((k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)), None)
    return image, label


def load_tfds_source(name: str, data_dir: str | None, manual_dir: str | None = None):
    """Loads the train and test splits into memory (uint8 arrays at native size)."""
    import tensorflow_datasets as tfds
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"unknown TFDS dataset {name!r}; see `tfds.list_builders()` for names") from None
    if manual_dir:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as e:  # TFDS raises many types; the first line is what the user needs
            raise DataError(f"could not prepare TFDS {name} from {manual_dir}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not builder.is_prepared():
        where = data_dir or "~/tensorflow_datasets"
        raise DataError(
            f"TFDS {name} is not prepared in {where} and there is no network; prepare it offline "
            f"with: tfgan fit --dataset tfds:{name} --data-dir {where} --manual-dir DIR_WITH_SOURCE_FILES")
    image_key, label_key = _feature_keys(builder.info.features)
    if image_key is None or label_key is None:
        raise DataError(f"TFDS {name} has no image and class-label features; it cannot be used here")
    splits = []
    for split in ("train", "test"):
        if split not in builder.info.splits:
            splits.append(None)
            continue
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        splits.append(ImageSet(array=np.asarray(data[image_key], np.uint8),
                               classes=np.asarray(data[label_key], np.int64)))
    if splits[0] is None:
        raise DataError(f"TFDS {name} has no train split")
    return splits[0], splits[1], list(builder.info.features[label_key].names)
