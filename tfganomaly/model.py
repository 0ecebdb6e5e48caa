"""GANomaly as one subclassed keras.Model: compile() takes both optimizers, train_step reads
like the paper, and scoring runs BatchNorm in inference mode.

The model consumes uint8 images (or floats in [0, 255]) at the configured size, exactly what a
camera delivers; scaling to [-1, 1] happens inside, so training, scoring and the TFLite export
share one preprocessing definition (`to_unit_range`).
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from .config import GANomalyConfig
from .data.images import ImageSpec
from .losses import adversarial_loss, contextual_loss, discriminator_loss, encoder_loss
from .networks import build_decoder, build_discriminator, build_encoder
from .errors import CalibrationError
from .scoring import Calibration, combine_scores, normalize_scores


def to_unit_range(images):
    """uint8 [0, 255] -> float [-1, 1], the range of the decoder's tanh."""
    return ops.cast(images, "float32") / 127.5 - 1.0


def latent_score(latent, latent_reconstructed):
    """The paper's anomaly score: mean over the latent of (GE(x) - E(G(x)))^2, per image."""
    diff = ops.cast(latent, "float32") - ops.cast(latent_reconstructed, "float32")
    return ops.mean(ops.square(ops.reshape(diff, (ops.shape(diff)[0], -1))), axis=1)


def anomaly_map(images_unit, reconstructions):
    """Per-pixel |x - G(x)| averaged over channels, scaled to [0, 1]."""
    return ops.mean(ops.abs(images_unit - ops.cast(reconstructions, "float32")), axis=-1) / 2.0


@keras.saving.register_keras_serializable(package="tfganomaly")
class GANomaly(keras.Model):
    """GANomaly: encoder GE, decoder GD, re-encoder E, and a feature-matching discriminator D.

    After `fit` on normal images, call `calibrate` on held-out normals; then `score`,
    `normalized_score` and `predict` (0/1 labels, scikit-learn style) work image by image,
    and the calibration (`threshold_`) is saved inside the `.keras` file.
    """

    def __init__(self, config: GANomalyConfig | dict | None = None, calibration: dict | None = None,
                 **kwargs):
        kwargs.pop("trainable", None)
        super().__init__(**kwargs)
        if config is None:
            config = GANomalyConfig()
        elif isinstance(config, dict):
            config = GANomalyConfig.from_dict(config)
        self.config = config
        c = config
        sync = c.sync_batchnorm
        self.encoder = build_encoder(c.isize, c.nc, c.nz, c.ndf, c.extra_layers, "encoder", sync)
        self.decoder = build_decoder(c.isize, c.nc, c.nz, c.ngf, c.extra_layers, "decoder", sync)
        self.reencoder = build_encoder(c.isize, c.nc, c.nz, c.ndf, c.extra_layers, "reencoder", sync)
        self.discriminator = build_discriminator(c.isize, c.nc, c.ndf, c.extra_layers, "discriminator", sync)
        self.calibration = Calibration.from_dict(calibration) if calibration else None
        self._reinit_seed = keras.random.SeedGenerator(c.seed + 1)
        self.d_reinits = keras.Variable(0, dtype="int64", trainable=False, name="d_reinits")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("g_loss", "adv_loss", "con_loss", "enc_loss", "d_loss")}
        self.built = True

    # ---- Keras plumbing -------------------------------------------------------------------
    def compile(self, g_optimizer=None, d_optimizer=None, jit_compile=None, **kwargs):
        c = self.config
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(c.lr, beta_1=c.beta1, beta_2=0.999)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(c.lr, beta_1=c.beta1, beta_2=0.999)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_optimizer)
            self.d_optimizer = keras.optimizers.LossScaleOptimizer(self.d_optimizer)
        # Built now, not at the first step: replicas need their slots created in the strategy's
        # scope, and a checkpoint restore then has concrete slots to fill.
        self.g_optimizer.build(self.generator_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        jit = c.jit_compile if jit_compile is None else jit_compile
        super().compile(jit_compile=bool(jit), **kwargs)

    def get_compile_config(self):
        return {}

    def compile_from_config(self, config):
        self.compile()

    def get_config(self):
        return {
            "name": self.name,
            "config": self.config.to_dict(),
            "calibration": self.calibration.to_dict() if self.calibration else None,
        }

    @property
    def image_spec(self) -> ImageSpec:
        """What images this model takes: feed it `ImageSet.dataset(model.image_spec, ...)`."""
        return ImageSpec.of(self.config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def generator_variables(self):
        return (self.encoder.trainable_variables + self.decoder.trainable_variables
                + self.reencoder.trainable_variables)

    def call(self, images, training=False):
        """Generator pass: returns (x in [-1, 1], G(x), GE(x), E(G(x)))."""
        x = to_unit_range(images)
        latent = self.encoder(x, training=training)
        fake = self.decoder(latent, training=training)
        latent_hat = self.reencoder(fake, training=training)
        return x, fake, latent, latent_hat

    # ---- training -------------------------------------------------------------------------
    def compute_losses(self, images, training=True):
        """The paper's equations on one batch; shared by every training driver."""
        x, fake, latent, latent_hat = self(images, training=training)
        real_logits, real_features = self.discriminator(x, training=training)
        fake_logits, fake_features = self.discriminator(fake, training=training)
        c = self.config
        adv = adversarial_loss(real_features, fake_features)
        con = contextual_loss(x, fake)
        enc = encoder_loss(latent, latent_hat)
        g_loss = c.w_adv * adv + c.w_con * con + c.w_enc * enc
        d_loss = discriminator_loss(real_logits, fake_logits)
        return {"g_loss": g_loss, "adv_loss": adv, "con_loss": con, "enc_loss": enc, "d_loss": d_loss}

    def train_step(self, data):
        """The model.fit driver: one device, Keras trackers."""
        images = data[0] if isinstance(data, (tuple, list)) else data
        losses = self.apply_step(images)
        self.reinit_discriminator_if_collapsed(losses["d_loss"])
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        results["d_reinits"] = self.d_reinits.value
        return results

    def apply_step(self, images, num_replicas: int = 1) -> dict:
        """One update of G and D on a (per-replica) batch: the single definition of the step maths,
        shared by train_step and the distributed loop. With replicas, each replica's mean loss is
        divided by their number, so the summed gradients are those of the global-batch mean."""
        with tf.GradientTape(persistent=True) as tape:
            losses = self.compute_losses(images, training=True)
            g_loss = self._scale(self.g_optimizer, losses["g_loss"] / num_replicas)
            d_loss = self._scale(self.d_optimizer, losses["d_loss"] / num_replicas)
        # One forward pass serves both updates: G's gradients never reach D's weights and
        # D's loss is differentiated only with respect to D, as in the reference code.
        g_vars, d_vars = self.generator_variables, self.discriminator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
        self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
        del tape
        return losses

    @staticmethod
    def _scale(optimizer, loss):
        return optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss

    def reinit_discriminator_if_collapsed(self, d_loss):
        """The reference re-draws D's weights when its loss falls below 1e-5 (D has won). With
        replicas, call it once per step with the global mean loss, outside the replica context,
        so every replica takes the same decision and receives the same new weights."""
        def reinit():
            for v in self.discriminator.weights:
                v.assign(self._fresh_value(v))
            self.d_reinits.assign_add(1)
            return tf.constant(True)

        tf.cond(d_loss < self.config.d_reinit_threshold, reinit, lambda: tf.constant(False))

    def _fresh_value(self, variable):
        name = variable.name
        if name == "kernel":
            return keras.random.normal(variable.shape, stddev=0.02, dtype=variable.dtype,
                                       seed=self._reinit_seed)
        if name == "gamma":
            return keras.random.normal(variable.shape, mean=1.0, stddev=0.02, dtype=variable.dtype,
                                       seed=self._reinit_seed)
        if name == "moving_variance":
            return ops.ones(variable.shape, dtype=variable.dtype)
        return ops.zeros(variable.shape, dtype=variable.dtype)

    # ---- scoring --------------------------------------------------------------------------
    @tf.function(reduce_retracing=True)
    def _score_components(self, images, batch_statistics=False):
        x, fake, latent, latent_hat = self(images, training=batch_statistics)
        amap = anomaly_map(x, fake)
        return {
            "latent": latent_score(latent, latent_hat),
            "reconstruction": ops.mean(ops.reshape(amap, (ops.shape(amap)[0], -1)), axis=1),
            "map": amap,
            "reconstruction_image": fake,
        }

    def score_components(self, images, batch_size: int = 64, batch_statistics: bool = False,
                         keep: tuple = ("latent", "reconstruction")) -> dict:
        """Raw per-image score parts as numpy arrays, BatchNorm in inference mode by default.

        batch_statistics=True reproduces the reference code's test-time BatchNorm (per-batch
        statistics); the moving averages are restored afterwards so the model is unchanged.
        """
        saved = [v.numpy() for v in self.non_trainable_variables] if batch_statistics else None
        parts = {name: [] for name in keep}
        try:
            for batch in iterate_batches(images, batch_size):
                self._check_input(batch)
                out = self._score_components(batch, batch_statistics)
                for name in keep:
                    parts[name].append(out[name].numpy())
        finally:
            if saved is not None:
                for v, value in zip(self.non_trainable_variables, saved):
                    v.assign(value)
        return {name: np.concatenate(chunks) if chunks else np.zeros((0,), np.float32)
                for name, chunks in parts.items()}

    def _check_input(self, batch):
        c = self.config
        expected = (c.isize, c.isize, c.nc)
        if tuple(batch.shape[1:]) != expected:
            raise ValueError(
                f"images have shape {tuple(batch.shape[1:])} but this model expects "
                f"{expected} (isize, isize, nc); load them with tfganomaly.data.load_images "
                f"or resize with tfganomaly.data.resize_images")

    def _calibrated(self) -> Calibration:
        if self.calibration is None:
            raise CalibrationError(
                "this model is not calibrated; call model.calibrate(validation_normals) "
                "after fit (tfgan fit does it for you)")
        return self.calibration

    def score(self, images, batch_size: int = 64, mode: str | None = None) -> np.ndarray:
        """One anomaly score per image (higher = more anomalous) in the calibrated score mode."""
        cal = self.calibration
        mode = mode or (cal.score_mode if cal else "latent")
        parts = self.score_components(images, batch_size)
        return combine_scores(parts["latent"], parts["reconstruction"], mode, cal)

    decision_function = score  # the PyOD name

    def verdicts(self, images, batch_size: int = 64) -> dict:
        """Score, normalised score (threshold at 0.5) and 0/1 label per image, from one pass."""
        cal = self._calibrated()
        scores = self.score(images, batch_size)
        return {"score": scores,
                "normalized_score": np.asarray(normalize_scores(scores, cal.threshold, cal.spread)),
                "label": (scores > cal.threshold).astype(np.int64)}

    def normalized_score(self, images, batch_size: int = 64) -> np.ndarray:
        """Scores mapped to [0, 1] with the calibrated threshold at 0.5."""
        return self.verdicts(images, batch_size)["normalized_score"]

    def predict(self, images, batch_size: int = 64, **kwargs) -> np.ndarray:
        """0/1 labels (1 = anomalous) at the calibrated threshold, as scikit-learn and PyOD do."""
        return self.verdicts(images, batch_size)["label"]

    @property
    def threshold_(self) -> float:
        return self._calibrated().threshold

    def anomaly_maps(self, images, batch_size: int = 64, sigma: float = 0.0) -> np.ndarray:
        """Per-pixel |x - G(x)| in [0, 1], shape (N, isize, isize): where the defect is.
        sigma > 0 smooths each map with a Gaussian (in pixels), which suppresses texture noise."""
        maps = self.score_components(images, batch_size, keep=("map",))["map"]
        if sigma > 0:
            from scipy.ndimage import gaussian_filter
            maps = gaussian_filter(maps, sigma=(0, sigma, sigma), mode="nearest")
        return maps

    def reconstruct(self, images, batch_size: int = 64) -> np.ndarray:
        """G(x) as uint8 images, for looking at what the model thinks a normal part is."""
        fake = self.score_components(images, batch_size, keep=("reconstruction_image",))
        return np.clip((fake["reconstruction_image"] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)

    def calibrate(self, validation_images, fpr: float = 0.01, score_mode: str = "latent",
                  labels=None, method: str = "fpr", batch_size: int = 64) -> Calibration:
        """Set `threshold_` from held-out normals (never from test labels)."""
        from .scoring import calibrate  # the function, not this method
        parts = self.score_components(validation_images, batch_size)
        self.calibration = calibrate(parts["latent"], parts["reconstruction"], score_mode=score_mode,
                                     fpr=fpr, labels=labels, method=method)
        return self.calibration


def iterate_batches(images, batch_size: int):
    """Yield uint8 batches from an array (NHW or NHWC), a tf.data.Dataset, or an iterable of arrays."""
    if isinstance(images, tf.data.Dataset):
        for batch in images:
            batch = batch[0] if isinstance(batch, (tuple, list)) else batch
            yield batch if len(batch.shape) == 4 else tf.expand_dims(batch, 0)
        return
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise ValueError(f"images must be NHW or NHWC, got an array of shape {array.shape}")
    for start in range(0, len(array), batch_size):
        yield tf.convert_to_tensor(array[start:start + batch_size])
