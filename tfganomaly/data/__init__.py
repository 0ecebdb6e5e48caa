"""Data sources, all returning the same DataSplits. `load_dataset(DatasetSpec(...))` is the entry point;
the spec is recorded in each run directory so evaluate/export rebuild exactly the same splits."""

from __future__ import annotations

import dataclasses

from .images import DataError, ImageSpec, list_images, load_image_file, load_images, resize_images
from .splits import DataSplits, ImageSet

SOURCES = ("digits", "mnist", "fashion_mnist", "folder", "npz", "tfds:NAME")


@dataclasses.dataclass
class DatasetSpec:
    """Which data, and how it is split: everything needed to rebuild the same splits later."""

    dataset: str = "digits"
    data_dir: str | None = None
    manual_dir: str | None = None
    protocol: str | None = None  # default: paper for class datasets, given otherwise
    anomaly_class: tuple = ()
    normal_class: tuple = ()
    seed: int = 0
    val_fraction: float = 0.1
    max_train: int | None = None
    skip_bad_images: bool = False

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["anomaly_class"], d["normal_class"] = list(self.anomaly_class), list(self.normal_class)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetSpec":
        data = dict(data)
        data["anomaly_class"] = tuple(data.get("anomaly_class") or ())
        data["normal_class"] = tuple(data.get("normal_class") or ())
        return cls(**data)


def _load_source(spec: DatasetSpec):
    name = spec.dataset
    if name == "digits":
        from .digits import load_digits_source
        return load_digits_source()
    if name in ("mnist", "fashion_mnist"):
        from .idx import load_idx_source
        return load_idx_source(name, spec.data_dir)
    if name == "folder":
        from .folder import load_folder_source
        return load_folder_source(spec.data_dir)
    if name == "npz":
        from .npz import load_npz_source
        return load_npz_source(spec.data_dir)
    if name.startswith("tfds:") and len(name) > 5:
        from .tfds_source import load_tfds_source
        return load_tfds_source(name[5:], spec.data_dir, spec.manual_dir)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(SOURCES)}")


def _class_index(value, class_names) -> int:
    text = str(value)
    if text in class_names:
        return class_names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(class_names):
        return int(text)
    names = ", ".join(f"{i}={n}" for i, n in enumerate(class_names))
    raise DataError(f"class {text!r} does not exist; classes are {names}")


def load_dataset(spec: DatasetSpec | None = None, **kwargs) -> DataSplits:
    """Load a source and apply its protocol: `load_dataset(dataset="mnist", data_dir=..., anomaly_class=(2,))`."""
    from ..protocols import make_splits
    spec = spec or DatasetSpec(**kwargs)
    train, test, class_names = _load_source(spec)
    train = train.check_files(spec.skip_bad_images)
    test = test.check_files(spec.skip_bad_images) if test is not None else None
    anomaly = tuple(_class_index(c, class_names) for c in spec.anomaly_class) if class_names else ()
    normal = tuple(_class_index(c, class_names) for c in spec.normal_class) if class_names else ()
    if class_names is None and (spec.anomaly_class or spec.normal_class):
        raise DataError(f"--anomaly-class/--normal-class need a class dataset; {spec.dataset} "
                        f"already says which test images are anomalous")
    if class_names is not None and not anomaly and not normal and spec.dataset == "digits":
        anomaly = (0,)
    protocol = spec.protocol or ("paper" if class_names is not None else "given")
    return make_splits(train, test, protocol=protocol, class_names=class_names,
                       anomaly_classes=anomaly, normal_classes=normal, seed=spec.seed,
                       val_fraction=spec.val_fraction, max_train=spec.max_train,
                       info={"dataset": spec.dataset, "class_names": class_names})


__all__ = ["DataError", "DataSplits", "DatasetSpec", "ImageSet", "ImageSpec", "SOURCES",
           "list_images", "load_dataset", "load_image_file", "load_images", "resize_images"]
