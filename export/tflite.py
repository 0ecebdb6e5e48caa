"""TFLite export of the calibrated scoring path GE -> GD -> E, with preprocessing and
calibration in the graph, quantization, and an accuracy check against the Keras model.

The graph takes the camera's uint8 image (1, isize, isize, nc) and returns the score, the
normalised score (threshold at 0.5) and optionally the anomaly map, built from the same
functions the Keras model uses (to_unit_range, latent_score, combine_scores, normalize_scores).
A functional keras.Model converted with from_keras_model is used because a tf.Module scoring
function failed int8 calibration here ("READ_VARIABLE ... variable != nullptr").
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfganomaly import __version__
from tfganomaly.data import ImageSpec
from tfganomaly.errors import ExportError, RunError
from tfganomaly.metrics import auroc
from tfganomaly.model import anomaly_map, latent_score, to_unit_range
from tfganomaly.runs import atomic_path, read_json, write_json
from tfganomaly.scoring import combine_scores, fpr_threshold, normalize_scores, recalibrated

QUANTIZATIONS = ("int8", "float16", "dynamic", "float32")
SIDECAR_FORMAT = 1
OUTPUTS = ("score", "normalized_score", "anomaly_map")


def build_scoring_model(model, with_map: bool = False, calibration=None) -> keras.Model:
    """uint8 image -> {score, normalized_score[, anomaly_map]}, batch 1, inference-mode BatchNorm."""
    c, cal = model.config, calibration or model.calibration
    if cal is None:
        raise ExportError("the model is not calibrated; export a run written by `tfgan fit`")
    image = keras.Input((c.isize, c.isize, c.nc), batch_size=1, dtype="uint8", name="image")
    x = to_unit_range(image)
    latent = model.encoder(x, training=False)
    fake = model.decoder(latent, training=False)
    latent_hat = model.reencoder(fake, training=False)
    amap = anomaly_map(x, fake)
    reconstruction = ops.mean(ops.reshape(amap, (1, -1)), axis=1)
    score = combine_scores(latent_score(latent, latent_hat), reconstruction, cal.score_mode, cal)
    outputs = {"score": score, "normalized_score": normalize_scores(score, cal.threshold, cal.spread)}
    if with_map:
        outputs["anomaly_map"] = amap
    return keras.Model(image, outputs, name="ganomaly_scoring")


def representative_images(normals: np.ndarray, seed: int = 0) -> np.ndarray:
    """Training normals plus synthetic defects. int8 fixes each tensor's range from these images,
    and from normals alone the score output would saturate at the largest normal score, so every
    real anomaly would clip to about the threshold. Patches, noise and inverted images score like
    anomalies and stretch the ranges to cover them."""
    rng = np.random.default_rng(seed)
    n, size = len(normals), normals.shape[1]
    defects = normals[rng.integers(0, n, max(n // 4, 1))].copy()
    for image in defects:
        h, w = rng.integers(size // 8, size // 2, 2)
        top, left = rng.integers(0, size - h), rng.integers(0, size - w)
        image[top:top + h, left:left + w] = rng.integers(0, 256, (h, w, image.shape[-1]), dtype=np.uint8) \
            if rng.random() < 0.5 else rng.integers(0, 256)
    noise = rng.integers(0, 256, (max(n // 20, 1),) + normals.shape[1:], dtype=np.uint8)
    inverted = 255 - normals[: max(n // 20, 1)]
    return np.concatenate([normals, defects, noise, inverted])


def convert(scoring_model: keras.Model, quantize: str, representative: np.ndarray | None = None) -> bytes:
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(scoring_model)
    if quantize != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative is None or len(representative) == 0:
            raise ExportError("int8 export needs representative images (the run's training normals)")

        def samples():
            for image in representative:
                yield [image[None].astype(np.uint8)]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras's export prints its signature dump
            return converter.convert()
    except Exception as e:  # the converter raises many types; its first line says which op failed
        raise ExportError(f"TFLite conversion ({quantize}) failed: {str(e).strip().splitlines()[0]}") from None


def make_interpreter(model_content: bytes | None = None, model_path: str | None = None, threads: int = 1):
    """ai-edge-litert's interpreter where installed (what devices run), else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model_content, model_path=model_path, num_threads=threads)


class TFLiteScorer:
    """Run an exported model image by image through its signature, reading outputs by name."""

    def __init__(self, model_content: bytes | None = None, model_path: str | None = None, threads: int = 1):
        self.interpreter = make_interpreter(model_content, model_path, threads)
        self.runner = self.interpreter.get_signature_runner()
        self.input_name = next(iter(self.runner.get_input_details()))

    def __call__(self, image: np.ndarray) -> dict:
        out = self.runner(**{self.input_name: image[None].astype(np.uint8)})
        return {k: np.asarray(v)[0] for k, v in out.items()}

    def score_all(self, images: np.ndarray) -> tuple[np.ndarray, float]:
        """Scores and the median per-image latency in milliseconds."""
        scores, times = [], []
        for image in images:
            start = time.perf_counter()
            scores.append(float(np.ravel(self(image)["score"])[0]))
            times.append(time.perf_counter() - start)
        return np.asarray(scores), 1000 * float(np.median(times)) if times else 0.0


def op_names(model_content: bytes) -> list[str]:
    """The builtin op names in a .tflite (for checking that int8 is int8 through and through)."""
    interpreter = make_interpreter(model_content)
    return sorted({d["op_name"] for d in interpreter._get_ops_details()})


def tensor_types(model_content: bytes) -> set[str]:
    interpreter = make_interpreter(model_content)
    return {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}


def keras_latency_ms(model, images: np.ndarray, repeats: int = 50) -> float:
    """Median per-image latency of the Keras scoring path at batch 1."""
    scoring = build_scoring_model(model)
    fn = tf.function(lambda x: scoring(x, training=False))
    fn(images[:1])
    times = []
    for image in images[:repeats]:
        start = time.perf_counter()
        fn(image[None])["score"].numpy()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def export_tflite(run, quantize: str = "int8", out: str | None = None, with_map: bool = False,
                  max_auroc_drop: float = 0.01, max_verify: int | None = None, splits=None) -> dict:
    """Convert, verify against the Keras model on the run's test split, and write the model and
    its sidecar atomically. Raises ExportError (after writing both) when the AUROC drop is too big."""
    model, config = run.model, run.model.config
    splits = splits or run.load_splits()
    spec = ImageSpec.of(config)
    representative = representative_images(splits.train.subset(
        np.random.default_rng(config.seed).permutation(len(splits.train))[:200]).load(spec), config.seed)
    content = convert(build_scoring_model(model, with_map), quantize, representative)
    calibration = model.calibration
    if quantize != "float32":
        # Quantization shifts scores a little; calibrate the exported model on its own scores of
        # the validation normals, so its threshold keeps the target false-positive rate.
        validation_scores, _ = TFLiteScorer(content).score_all(splits.validation.load(spec))
        calibration = recalibrated(calibration, validation_scores,
                                   fpr_threshold(validation_scores, calibration.target_fpr))
        content = convert(build_scoring_model(model, with_map, calibration), quantize, representative)
    out = out or os.path.join(run.path, "export", f"model_{quantize}.tflite")

    check = verify(model, content, splits, spec, calibration.threshold, max_verify)
    check["tflite_bytes"] = len(content)
    check["auroc_drop"] = (check["keras_auroc"] - check["tflite_auroc"]
                           if check["keras_auroc"] is not None else None)
    check["max_auroc_drop"] = max_auroc_drop
    check["passed"] = check["auroc_drop"] is None or check["auroc_drop"] <= max_auroc_drop
    runner = TFLiteScorer(content)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "model_file": os.path.basename(out),
        "input": {"name": runner.input_name, "shape": [1, config.isize, config.isize, config.nc],
                  "dtype": "uint8", "range": [0, 255], "isize": config.isize, "nc": config.nc,
                  "resize": config.resize, "resize_antialias": config.resize != "nearest",
                  "color": "grey" if config.nc == 1 else "RGB", "layout": "NHWC"},
        "outputs": {name: name for name in OUTPUTS if name in runner.runner.get_output_details()},
        "verdict": "anomalous when normalized_score > 0.5 (equivalently score > threshold)",
        "threshold": calibration.threshold, "score_mode": calibration.score_mode,
        "calibration": calibration.to_dict(), "keras_calibration": model.calibration.to_dict(),
        "quantization": quantize,
        "training": {"dataset": run.info.get("data"), "splits": run.info.get("splits"),
                     "config": config.to_dict()},
        "check": check,
        "versions": {"tfganomaly": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
    }
    with atomic_path(out, suffix=".tflite") as tmp, open(tmp, "wb") as f:
        f.write(content)
    write_json(out + ".json", sidecar)
    exports_file = os.path.join(run.path, "export", "export.json")
    summary = _read_or_empty(exports_file)
    summary[quantize] = {"file": os.path.relpath(out, run.path), **check}
    write_json(exports_file, summary)
    if not check["passed"]:
        better = next((q for q in QUANTIZATIONS[QUANTIZATIONS.index(quantize) + 1:]), None)
        raise ExportError(
            f"{quantize} export lost {check['auroc_drop']:.4f} AUROC (Keras {check['keras_auroc']:.4f}, "
            f"TFLite {check['tflite_auroc']:.4f}), more than --max-auroc-drop {max_auroc_drop}; "
            + (f"try --quantize {better}" if better else "retrain or relax --max-auroc-drop")
            + f" (the model was still written to {out})")
    return {"path": out, "sidecar": out + ".json", **check}


def verify(model, content: bytes, splits, spec: ImageSpec, tflite_threshold: float,
           max_verify: int | None = None) -> dict:
    """Score the test split with the real interpreter and with Keras; compare."""
    test = splits.test
    if max_verify is not None and len(test) > max_verify:
        test = test.subset(np.sort(np.random.default_rng(0).permutation(len(test))[:max_verify]))
    images = test.load(spec)
    if len(images) == 0:
        images = splits.validation.load(spec)
        labels = np.zeros(len(images), np.int64)
    else:
        labels = test.labels
    keras_scores = model.score(images)
    tflite_scores, latency = TFLiteScorer(content).score_all(images)
    both = len(np.unique(labels)) == 2
    return {
        "n_images": int(len(images)),
        "keras_auroc": auroc(labels, keras_scores) if both else None,
        "tflite_auroc": auroc(labels, tflite_scores) if both else None,
        "score_correlation": float(np.corrcoef(keras_scores, tflite_scores)[0, 1]),
        "verdict_agreement": float(np.mean((keras_scores > model.calibration.threshold)
                                           == (tflite_scores > tflite_threshold))),
        "tflite_latency_ms": latency,
        "keras_latency_ms": keras_latency_ms(model, images),
    }


def _read_or_empty(path: str) -> dict:
    try:
        return read_json(path)
    except RunError:
        return {}
