"""fit_run: data -> model -> calibration -> run directory. The CLI's `tfgan fit` is a thin shell over it."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import shutil
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from . import __version__
from .config import GANomalyConfig
from .data import DataError, DatasetSpec, ImageSpec, load_dataset
from .data.splits import DataSplits
from .distributed import distributed_fit, is_chief, is_default, make_strategy
from .errors import TrainingDiverged
from .model import GANomaly
from .runs import METRICS_FILE, MODEL_FILE, RUN_FILE, RUN_FORMAT, new_run_dir, read_json, save_model, write_json

CHECKPOINT_DIR = "checkpoints"


@dataclasses.dataclass
class FitResult:
    run_dir: str
    model: GANomaly
    metrics: dict
    splits: DataSplits


class DivergenceGuard(keras.callbacks.Callback):
    """Stop with a clear message at the first NaN/Inf loss: a NaN never silently becomes a model."""

    def __init__(self, checkpoint_dir: str):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = sorted(k for k, v in (logs or {}).items() if k.endswith("loss") and not math.isfinite(float(v)))
        if bad:
            last = tf.train.latest_checkpoint(self.checkpoint_dir) or "none yet"
            raise TrainingDiverged(
                f"training diverged: {', '.join(bad)} became NaN/Inf at epoch {self.epoch + 1}, "
                f"step {batch + 1}; last good checkpoint: {last}; try a lower --lr, a smaller "
                f"--w-con, or --precision float32")


class EpochCheckpoint(keras.callbacks.Callback):
    """Model, both optimizers and the count of finished epochs, every epoch and optionally every
    `every_steps` steps, for `tfgan fit --resume` (which restarts an interrupted epoch from the
    weights of its last step checkpoint)."""

    def __init__(self, model: GANomaly, directory: str, every_steps: int | None = None):
        super().__init__()
        self.every_steps = every_steps
        self.steps = 0
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, g_optimizer=model.g_optimizer,
                                              d_optimizer=model.d_optimizer, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=2)

    def restore(self) -> int:
        """Restore the latest checkpoint; returns the number of epochs it had finished."""
        if self.manager.latest_checkpoint is None:
            return 0
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return int(self.epoch.numpy())

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.every_steps and self.steps % self.every_steps == 0:
            self.manager.save()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self.manager.save()


def set_precision(precision: str) -> None:
    keras.mixed_precision.set_global_policy(precision)


def inference_copy(model: GANomaly, strategy: tf.distribute.Strategy) -> GANomaly:
    """Mixed precision and replicas are for training only: scoring, calibration, the saved model
    and the export use a plain float32 copy, so a bfloat16-trained model keeps full precision."""
    if model.config.precision == "float32" and is_default(strategy):
        return model
    set_precision("float32")
    with tf.distribute.get_strategy().scope():
        copy = GANomaly(model.config)
    copy.set_weights(model.get_weights())
    copy.compile()
    return copy


def auto_precision() -> str:
    """The fastest precision that keeps accuracy on this machine: mixed bfloat16 where the hardware
    computes in bfloat16 natively (AVX-512 BF16 or AMX CPUs, GPUs of compute capability 8.0 and
    up; benchmarks/speed.py and benchmarks/accuracy.py measured it), float32 elsewhere, where
    bfloat16 would be emulated and slower."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0))
                        for g in gpus]
        return "mixed_bfloat16" if min(capabilities) >= (8, 0) else "float32"
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return "float32"
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def auto_jit_compile() -> bool:
    """XLA where it helps: on GPUs. On CPUs it measured slower than oneDNN here (benchmarks/speed.py)."""
    return bool(tf.config.list_physical_devices("GPU"))


def train_dataset(splits: DataSplits, config: GANomalyConfig) -> tf.data.Dataset:
    n = len(splits.train)
    if n == 0:
        raise DataError("no training images")
    return splits.train.dataset(ImageSpec.of(config), config.batch_size, shuffle=True, seed=config.seed,
                                drop_remainder=n >= config.batch_size)


def evaluate_clean(model: GANomaly, splits: DataSplits, config: GANomalyConfig) -> dict | None:
    """Test AUROC with BatchNorm in inference mode and the validation calibration (no test labels used)."""
    from .evaluation import evaluate
    labels = splits.test.labels
    if len(labels) == 0 or len(np.unique(labels)) < 2:
        return None
    return evaluate(model, splits.test, ImageSpec.of(config), protocol="clean").metrics


def fit_run(config: GANomalyConfig, data: DatasetSpec, out: str = "runs", name: str | None = None,
            fpr: float = 0.01, score_mode: str = "latent", verbose="auto", resume: str | None = None,
            splits: DataSplits | None = None, strategy="default",
            checkpoint_every: int | None = None) -> FitResult:
    """Train on the normal images, calibrate on the validation normals, save everything atomically.

    strategy: "default", "mirrored", "multiworker", "tpu" or a tf.distribute.Strategy. Under
    multiworker only the chief writes the run directory; the other workers use a temporary one."""
    keras.utils.set_random_seed(config.seed)
    set_precision(config.precision)
    strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
    chief = is_chief(strategy)
    verbose = (1 if sys.stdout.isatty() else 2) if verbose == "auto" else verbose
    try:
        splits = splits or load_dataset(data)
        run_dir = resume or (new_run_dir(out, name) if chief else tempfile.mkdtemp(prefix="tfgan-worker-"))
        with strategy.scope():
            model = GANomaly(config)
            model.compile()
            checkpoint = EpochCheckpoint(model, os.path.join(run_dir, CHECKPOINT_DIR), checkpoint_every)
        history = read_json(os.path.join(run_dir, METRICS_FILE)).get("history", {}) if resume else {}
        initial_epoch = checkpoint.restore() if resume else 0
        if resume:
            history = {k: v[:initial_epoch] for k, v in history.items()}
        _write_run_file(run_dir, config, data, splits, model, fpr, score_mode, status="training")
        callbacks = [DivergenceGuard(checkpoint.manager.directory), checkpoint, DiscriminatorWatch(),
                     keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
                     _HistoryWriter(run_dir, history)]
        if initial_epoch < config.epochs and is_default(strategy):
            model.fit(train_dataset(splits, config), epochs=config.epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks, verbose=verbose, shuffle=False)
        elif initial_epoch < config.epochs:
            distributed_fit(model, train_dataset(splits, config), config.epochs, strategy, callbacks,
                            initial_epoch=initial_epoch, verbose=verbose)
        model = inference_copy(model, strategy)
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)
            return FitResult(None, model, {"history": callbacks[-1].history}, splits)
        spec = ImageSpec.of(config)
        model.calibrate(splits.validation.dataset(spec, config.batch_size), fpr=fpr, score_mode=score_mode)
        test = evaluate_clean(model, splits, config)
        metrics = {"history": callbacks[-1].history, "epochs_trained": config.epochs,
                   "d_reinits": int(model.d_reinits.numpy()), "calibration": model.calibration.to_dict(),
                   "model_selection": "final epoch (no test labels are used to pick an epoch)",
                   "test": test, "test_auroc": test["auroc"] if test else None,
                   "protocol": f"{splits.info['protocol']} split, clean scoring (BatchNorm in inference "
                               f"mode, threshold from validation normals)"}
        save_model(model, os.path.join(run_dir, MODEL_FILE))
        write_json(os.path.join(run_dir, METRICS_FILE), metrics)
        _write_run_file(run_dir, config, data, splits, model, fpr, score_mode, status="complete")
        return FitResult(run_dir, model, metrics, splits)
    finally:
        set_precision("float32")


class DiscriminatorWatch(keras.callbacks.Callback):
    """Report discriminator collapses: the reference re-initialises D silently, which hides a
    training problem when it happens every few steps."""

    def __init__(self, warn_per_epoch: int = 10):
        super().__init__()
        self.warn_per_epoch = warn_per_epoch
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        total = int(self.model.d_reinits.numpy())
        new, self.seen = total - self.seen, total
        if new:
            print(f"discriminator re-initialised {new} time(s) in epoch {epoch + 1} ({total} in all)"
                  + ("; it keeps collapsing: try a lower --lr or a larger --w-adv" if new >= self.warn_per_epoch else ""))


class _HistoryWriter(keras.callbacks.Callback):
    """Per-epoch loss history in metrics.json, continuous across resumes."""

    def __init__(self, run_dir: str, history: dict):
        super().__init__()
        self.path = os.path.join(run_dir, METRICS_FILE)
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        write_json(self.path, {"history": self.history, "epochs_trained": epoch + 1})


def _write_run_file(run_dir, config, data, splits, model, fpr, score_mode, status):
    write_json(os.path.join(run_dir, RUN_FILE), {
        "format": RUN_FORMAT, "status": status, "config": config.to_dict(), "data": data.to_dict(),
        "splits": splits.info, "fpr": fpr, "score_mode": score_mode, "calibration": model.calibration.to_dict() if model.calibration else None,
        "versions": {"tfganomaly": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
    })
