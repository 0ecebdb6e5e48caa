"""Score modes and calibration: what turns raw GANomaly distances into verdicts.

The functions that run on every image (`combine_scores`, `normalize_scores`) use keras.ops so
that the TFLite export builds them into its graph from this very code, not from a copy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from keras import ops

from .errors import CalibrationError

SCORE_MODES = ("latent", "reconstruction", "combined")
THRESHOLD_METHODS = ("fpr", "f1")


@dataclasses.dataclass
class Calibration:
    """Everything needed to turn one image's score into a verdict, with no test set around it.

    The normalised score is sigmoid((score - threshold) / spread): monotonic, in [0, 1],
    and exactly 0.5 at the threshold. spread is the standard deviation of validation scores.
    """

    score_mode: str
    threshold: float
    spread: float
    latent_scale: float = 1.0
    reconstruction_scale: float = 1.0
    combined_weight: float = 0.5
    method: str = "fpr"
    target_fpr: float = 0.01
    validation_fpr: float = 0.0
    n_validation: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(**data)


def combine_scores(latent, reconstruction, mode: str, calibration: Calibration | None = None):
    """The score of the chosen mode; `combined` scales each part by its spread on validation normals."""
    if mode == "latent":
        return latent
    if mode == "reconstruction":
        return reconstruction
    if mode == "combined":
        if calibration is None:
            raise CalibrationError("score mode 'combined' needs a calibration (the parts' scales)")
        w = calibration.combined_weight
        return (w * latent / calibration.latent_scale
                + (1.0 - w) * reconstruction / calibration.reconstruction_scale)
    raise CalibrationError(f"unknown score mode {mode!r}; choose one of {', '.join(SCORE_MODES)}")


def normalize_scores(scores, threshold: float, spread: float):
    """Map scores to [0, 1] with the threshold at exactly 0.5."""
    return ops.sigmoid((ops.cast(scores, "float32") - threshold) * (1.0 / spread))


def _positive_scale(values: np.ndarray) -> float:
    scale = float(np.std(values))
    return scale if scale > 1e-12 else max(float(np.mean(np.abs(values))), 1e-12)


def calibrate(latent, reconstruction, score_mode: str = "latent", fpr: float = 0.01,
              labels=None, method: str = "fpr", combined_weight: float = 0.5) -> Calibration:
    """Threshold from validation scores: the (1 - fpr) quantile of normals, or the F1 optimum
    where labelled validation anomalies exist."""
    latent = np.asarray(latent, np.float64)
    reconstruction = np.asarray(reconstruction, np.float64)
    if len(latent) == 0:
        raise CalibrationError("no validation images to calibrate on; keep a validation split "
                               "(--val-fraction > 0) or pass validation images")
    if score_mode not in SCORE_MODES:
        raise CalibrationError(f"unknown score mode {score_mode!r}; choose one of {', '.join(SCORE_MODES)}")
    if method not in THRESHOLD_METHODS:
        raise CalibrationError(f"unknown threshold method {method!r}; choose fpr or f1")
    if not 0.0 <= fpr < 1.0:
        raise CalibrationError(f"fpr must be in [0, 1), got {fpr}")
    labels = np.zeros(len(latent), np.int64) if labels is None else np.asarray(labels, np.int64)
    normal = labels == 0
    if not normal.any():
        raise CalibrationError("calibration needs normal validation images; got only anomalies")
    cal = Calibration(score_mode=score_mode, threshold=0.0, spread=1.0,
                      latent_scale=_positive_scale(latent[normal]),
                      reconstruction_scale=_positive_scale(reconstruction[normal]),
                      combined_weight=combined_weight, method=method, target_fpr=fpr,
                      n_validation=int(len(latent)))
    scores = np.asarray(combine_scores(latent, reconstruction, score_mode, cal), np.float64)
    if method == "f1":
        if normal.all():
            raise CalibrationError("the F1 threshold needs labelled validation anomalies; use method 'fpr'")
        threshold = f1_optimal_threshold(labels, scores)
    else:
        threshold = fpr_threshold(scores[normal], fpr)
    return recalibrated(cal, scores[normal], threshold)


def fpr_threshold(normal_scores, fpr: float) -> float:
    """The score that flags at most a fraction fpr of these normal images."""
    normal_scores = np.asarray(normal_scores, np.float64)
    return float(np.quantile(normal_scores, 1.0 - fpr, method="higher")) if fpr > 0 else float(np.max(normal_scores))


def recalibrated(cal: Calibration, normal_scores, threshold: float) -> Calibration:
    """A copy of cal with its threshold and spread set from these validation normal scores."""
    normal_scores = np.asarray(normal_scores, np.float64)
    return dataclasses.replace(cal, threshold=float(threshold), spread=_positive_scale(normal_scores),
                               validation_fpr=float(np.mean(normal_scores > threshold)))


def f1_optimal_threshold(labels, scores) -> float:
    from sklearn.metrics import precision_recall_curve
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    # precision_recall_curve predicts positive at score >= t; our rule is score > threshold.
    best = thresholds[int(np.argmax(f1))]
    return float(np.nextafter(best, -np.inf))


def min_max(scores) -> np.ndarray:
    """The reference code's test-set min-max scaling; only for the reference-compatible protocol."""
    scores = np.asarray(scores, np.float64)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)
