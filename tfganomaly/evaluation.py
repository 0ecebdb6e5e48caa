"""Test-set evaluation under two clearly labelled protocols.

- clean (default, what to trust): BatchNorm in inference mode, threshold from validation normals,
  every image scored on its own.
- reference-compatible: per-batch BatchNorm statistics and min-max scaling over the whole test
  set, as the original GANomaly code reports. Only for comparison with published numbers: it
  needs the test set to score an image, and it leaks batch information into each score.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .data.images import ImageSpec, load_image_file
from .data.splits import ImageSet
from .metrics import MetricError, auroc, detection_metrics
from .scoring import combine_scores, min_max

PROTOCOL_LABELS = {
    "clean": "clean: BatchNorm in inference mode, validation-calibrated threshold, per-image scores",
    "reference": "reference-compatible: per-batch BatchNorm statistics, min-max over the test set "
                 "(comparable with the paper, not meant for use)",
}
REFERENCE_BATCH = 64


@dataclasses.dataclass
class Evaluation:
    metrics: dict
    scores: np.ndarray
    latent: np.ndarray
    labels: np.ndarray
    defect_types: list
    images: np.ndarray


def score_test_set(model, test: ImageSet, spec: ImageSpec, protocol: str = "clean",
                   images: np.ndarray | None = None) -> Evaluation:
    images = test.load(spec) if images is None else images
    cal = model.calibration
    if protocol == "clean":
        parts = model.score_components(images)
        scores = combine_scores(parts["latent"], parts["reconstruction"], cal.score_mode, cal)
    elif protocol == "reference":
        parts = model.score_components(images, batch_size=REFERENCE_BATCH, batch_statistics=True)
        scores = min_max(parts["latent"])
    else:
        raise ValueError(f"unknown protocol {protocol!r}; choose clean or reference")
    return Evaluation({}, np.asarray(scores, np.float64), parts["latent"], test.labels,
                      list(test.defect_types), images)


def per_defect_auroc(labels, scores, defect_types) -> dict:
    """AUROC of each defect type against the normal test images."""
    defect_types = np.asarray(defect_types)
    normal = labels == 0
    out = {}
    for defect in sorted(set(defect_types[labels == 1])):
        mask = normal | (defect_types == defect)
        out[defect] = auroc(labels[mask], scores[mask])
    return out


def pixel_auroc(model, test: ImageSet, images: np.ndarray, spec: ImageSpec) -> float | None:
    """Pixel-level AUROC of the anomaly map against ground-truth masks (normals count as all-good)."""
    if not any(test.mask_paths):
        return None
    mask_spec = ImageSpec(spec.isize, 1, "nearest")
    masks = np.stack([load_image_file(p, mask_spec)[..., 0] > 127 if p else
                      np.zeros((spec.isize, spec.isize), bool) for p in test.mask_paths])
    maps = model.anomaly_maps(images)
    try:
        return auroc(masks.reshape(-1).astype(np.int64), maps.reshape(-1))
    except MetricError:
        return None


def evaluate(model, test: ImageSet, spec: ImageSpec, protocol: str = "clean",
             with_pixels: bool = False, images: np.ndarray | None = None) -> Evaluation:
    """Scores and metrics for one protocol; clean adds threshold metrics and per-defect AUROC.
    Pass the already-loaded test images to avoid decoding them again."""
    result = score_test_set(model, test, spec, protocol, images)
    labels, scores = result.labels, result.scores
    if protocol == "clean":
        metrics = detection_metrics(labels, scores, model.calibration.threshold)
        metrics["per_defect_auroc"] = per_defect_auroc(labels, scores, result.defect_types)
        if with_pixels:
            metrics["pixel_auroc"] = pixel_auroc(model, test, result.images, spec)
    else:
        metrics = {"auroc": auroc(labels, scores)}
    metrics["protocol"] = PROTOCOL_LABELS[protocol]
    result.metrics = metrics
    return result


def evaluate_run(run, splits=None, out_dir: str | None = None) -> dict:
    """Both protocols on a run's test split, with metrics.json and pictures in out_dir (default RUN/eval)."""
    import os

    from . import report
    from .runs import write_json

    splits = splits or run.load_splits()
    model, spec = run.model, ImageSpec.of(run.model.config)
    if model.calibration is None:
        raise MetricError(f"the model in {run.path} has no calibration; it was not saved by `tfgan fit`")
    clean = evaluate(model, splits.test, spec, "clean", with_pixels=True)
    reference = evaluate(model, splits.test, spec, "reference", images=clean.images)
    out_dir = out_dir or os.path.join(run.path, "eval")
    os.makedirs(out_dir, exist_ok=True)
    pictures = [os.path.join(out_dir, "extremes.png")]
    report.write_extremes_grid(pictures[0], model, clean.images, clean.scores)
    title = f"{splits.info.get('dataset')} ({splits.info.get('protocol')} protocol)"
    plots_note = None
    if report.matplotlib_available():
        pictures += report.write_plots(out_dir, clean.labels, clean.scores, model.calibration.threshold,
                                       clean.latent, title)
    else:
        plots_note = "matplotlib is not installed: ROC/PR curves and histograms skipped (pip install tfganomaly[plots])"
    results = {"clean": clean.metrics, "reference_compatible": reference.metrics,
               "split": splits.info, "score_mode": model.calibration.score_mode,
               "pictures": [os.path.basename(p) for p in pictures], "plots_note": plots_note}
    write_json(os.path.join(out_dir, "metrics.json"), results)
    return results
