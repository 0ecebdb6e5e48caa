"""The run directory: the contract between `tfgan fit`, `evaluate`, `score` and `export`.

Every artifact is written to a temporary file in the same directory and renamed into place,
so a kill at any moment leaves the previous good version readable, never a truncated file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import tempfile

import numpy as np

from .errors import RunError

RUN_FORMAT = 1
MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix or ".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_json(path: str, data) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=_json_default)
        f.write("\n")


def read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path} not found") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def save_model(model, path: str) -> None:
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_model(path: str):
    """Load a `.keras` GANomaly with safe_mode on: a file carrying custom code is refused."""
    import keras
    from .model import GANomaly  # noqa: F401  registers the class for deserialisation
    if not os.path.isfile(path):
        raise RunError(f"model file {path} not found")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as e:  # Keras raises ValueError/TypeError/zip errors; one line is what users need
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"cannot load model {path}: {first}") from None


def new_run_dir(parent: str = "runs", name: str | None = None) -> str:
    name = name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(parent, name)
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = os.path.join(parent, f"{name}-{suffix}")
    os.makedirs(path)
    return path


@dataclasses.dataclass
class Run:
    """A loaded run: the calibrated model, and the specs needed to rebuild its data."""

    path: str
    model: object
    info: dict

    @property
    def dataset_spec(self):
        from .data import DatasetSpec
        return DatasetSpec.from_dict(self.info["data"])

    def load_splits(self):
        from .data import load_dataset
        return load_dataset(self.dataset_spec)


def load_run(path: str) -> Run:
    if not os.path.isdir(path):
        raise RunError(f"run directory {path} does not exist")
    run_file = os.path.join(path, RUN_FILE)
    if not os.path.isfile(run_file):
        raise RunError(f"{path} is not a tfganomaly run (no {RUN_FILE}); pass the directory `tfgan fit` wrote")
    info = read_json(run_file)
    if info.get("format") != RUN_FORMAT:
        raise RunError(f"{path} was written by an incompatible tfganomaly (run format "
                       f"{info.get('format')!r}, this version reads {RUN_FORMAT}); retrain it")
    return Run(path=path, model=load_model(os.path.join(path, MODEL_FILE)), info=info)
