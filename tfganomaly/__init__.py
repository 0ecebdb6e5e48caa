"""tfganomaly: GANomaly one-class anomaly detection with calibrated scores and TFLite export.

Names are imported lazily, so that `tfganomaly.export.edge_infer` (the device script, installed
as `tfgan-infer`) never pulls TensorFlow in through this package.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "GANomaly": "model", "GANomalyConfig": "config", "Calibration": "scoring",
    "DatasetSpec": "data", "ImageSpec": "data", "load_dataset": "data",
    "fit_run": "training", "load_run": "runs", "load_model": "runs", "evaluate_run": "evaluation",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'tfganomaly' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
