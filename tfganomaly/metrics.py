"""Detection metrics on top of scikit-learn, with a clear error where a metric is undefined."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from .errors import MetricError


def _check(labels) -> np.ndarray:
    labels = np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2:
        kind = "anomalous" if len(labels) and labels[0] == 1 else "normal"
        raise MetricError(f"AUROC needs normal and anomalous test images; all {len(labels)} are {kind}")
    return labels


def auroc(labels, scores) -> float:
    return float(skm.roc_auc_score(_check(labels), scores))


def auprc(labels, scores) -> float:
    return float(skm.average_precision_score(_check(labels), scores))


def equal_error_rate(labels, scores) -> float:
    fpr, tpr, _ = skm.roc_curve(_check(labels), scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def detection_metrics(labels, scores, threshold: float) -> dict:
    """Everything a line engineer asks about one threshold, plus the threshold-free curves' areas."""
    labels = _check(labels)
    scores = np.asarray(scores, np.float64)
    predicted = (scores > threshold).astype(np.int64)
    return {
        "auroc": auroc(labels, scores),
        "auprc": auprc(labels, scores),
        "eer": equal_error_rate(labels, scores),
        "f1": float(skm.f1_score(labels, predicted, zero_division=0)),
        "precision": float(skm.precision_score(labels, predicted, zero_division=0)),
        "recall": float(skm.recall_score(labels, predicted, zero_division=0)),
        "fpr": float(predicted[labels == 0].mean()),
        "threshold": float(threshold),
        "n_normal": int((labels == 0).sum()),
        "n_anomalous": int((labels == 1).sum()),
    }
