"""GANomalyConfig: every hyperparameter in one validated, JSON-serialisable object."""

from __future__ import annotations

import dataclasses
import json
import math

from .errors import ConfigError

RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class GANomalyConfig:
    """Hyperparameters of one GANomaly model; the defaults are the paper's reference settings.

    The image spec (isize, nc, resize) is part of the model because every consumer
    (training, scoring, export, the device script) must preprocess identically.
    """

    isize: int = 32
    nc: int = 1
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    extra_layers: int = 0
    w_adv: float = 1.0
    w_con: float = 50.0
    w_enc: float = 1.0
    lr: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 64
    epochs: int = 15
    seed: int = 0
    resize: str = "bilinear"
    d_reinit_threshold: float = 1e-5
    jit_compile: bool = False
    precision: str = "float32"
    sync_batchnorm: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Fail fast with a message that names the field and the fix."""
        for name in ("isize", "nc", "nz", "ngf", "ndf", "extra_layers", "batch_size", "epochs", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        if self.isize < 16 or self.isize & (self.isize - 1):
            lower = 2 ** max(4, int(math.log2(max(self.isize, 1))))
            raise ConfigError(
                f"isize must be a power of two and at least 16, got {self.isize}; "
                f"use {lower} or {lower * 2} (images of any size are resized to isize)"
            )
        if self.nc not in (1, 3):
            raise ConfigError(f"nc must be 1 (grey) or 3 (RGB), got {self.nc}")
        for name in ("nz", "ngf", "ndf", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.extra_layers < 0:
            raise ConfigError(f"extra_layers must be 0 or more, got {self.extra_layers}")
        for name in ("w_adv", "w_con", "w_enc"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ConfigError(f"lr must be in (0, 1), got {self.lr!r}")
        if not (isinstance(self.beta1, (int, float)) and 0 <= self.beta1 < 1):
            raise ConfigError(f"beta1 must be in [0, 1), got {self.beta1!r}")
        if self.resize not in RESIZE_METHODS:
            raise ConfigError(f"resize must be one of {', '.join(RESIZE_METHODS)}, got {self.resize!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GANomalyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "GANomalyConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "GANomalyConfig":
        return dataclasses.replace(self, **changes)
