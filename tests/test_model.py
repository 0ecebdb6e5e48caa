import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfganomaly.config import GANomalyConfig
from tfganomaly.errors import CalibrationError
from tfganomaly.metrics import auroc
from tfganomaly.model import GANomaly
from tfganomaly.runs import load_model, save_model


def test_learning_beats_chance_clearly(digits_run):
    """6 epochs on the built-in digits, digit 0 anomalous, clean protocol. Measured 0.98-0.99."""
    assert digits_run.metrics["test_auroc"] > 0.85


def test_history_has_every_loss(digits_run):
    history = digits_run.metrics["history"]
    for key in ("g_loss", "adv_loss", "con_loss", "enc_loss", "d_loss"):
        assert len(history[key]) == 6 and all(np.isfinite(history[key]))
    assert history["con_loss"][-1] < history["con_loss"][0]  # reconstruction improves


def test_save_load_gives_identical_scores_and_calibration(digits_run, digits_test_images, tmp_path):
    images, _ = digits_test_images
    path = str(tmp_path / "m.keras")
    save_model(digits_run.model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.score(images[:100]), digits_run.model.score(images[:100]))
    assert loaded.threshold_ == digits_run.model.threshold_
    assert loaded.calibration == digits_run.model.calibration


def test_inference_mode_scores_do_not_depend_on_the_batch(digits_run, digits_test_images):
    images, _ = digits_test_images
    alone = np.concatenate([digits_run.model.score(images[i:i + 1]) for i in range(8)])
    np.testing.assert_allclose(alone, digits_run.model.score(images[:8]), rtol=1e-4, atol=1e-6)


def test_batch_statistics_mode_differs_and_leaves_model_unchanged(digits_run, digits_test_images):
    images, _ = digits_test_images
    model = digits_run.model
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    clean = model.score_components(images[:64])["latent"]
    batch = model.score_components(images[:64], batch_statistics=True)["latent"]
    assert not np.allclose(clean, batch)
    for v, old in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_train_step_applies_the_papers_losses():
    """One step, compared with losses recomputed by hand from the same weights and batch."""
    keras.utils.set_random_seed(3)
    model = GANomaly(GANomalyConfig(isize=16, ngf=8, ndf=8, nz=10, w_adv=2.0, w_con=30.0, w_enc=3.0))
    model.compile()
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 1)).astype(np.uint8)
    x = images.astype("float32") / 127.5 - 1
    z = model.encoder(x, training=True)
    fake = model.decoder(z, training=True)
    z_hat = model.reencoder(fake, training=True)
    real_logit, real_feat = model.discriminator(x, training=True)
    fake_logit, fake_feat = model.discriminator(fake, training=True)
    adv = np.mean((real_feat.numpy() - fake_feat.numpy()) ** 2)
    con = np.mean(np.abs(x - fake.numpy()))
    enc = np.mean((z.numpy() - z_hat.numpy()) ** 2)
    logs = model.compute_losses(images)
    np.testing.assert_allclose(float(logs["adv_loss"]), adv, rtol=1e-4)
    np.testing.assert_allclose(float(logs["con_loss"]), con, rtol=1e-4)
    np.testing.assert_allclose(float(logs["enc_loss"]), enc, rtol=1e-4)
    np.testing.assert_allclose(float(logs["g_loss"]), 2 * adv + 30 * con + 3 * enc, rtol=1e-4)
    g_before = [v.numpy().copy() for v in model.generator_variables]
    d_before = [v.numpy().copy() for v in model.discriminator.trainable_variables]
    model.train_on_batch(images)
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(g_before, model.generator_variables))
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(d_before, model.discriminator.trainable_variables))


def test_discriminator_is_reinitialised_when_its_loss_collapses():
    keras.utils.set_random_seed(1)
    model = GANomaly(GANomalyConfig(isize=16, ngf=8, ndf=8, nz=10, d_reinit_threshold=1e9))
    model.compile()
    kernel = model.discriminator.get_layer("initial_conv").kernel
    kernel.assign(tf.zeros_like(kernel))
    model.train_on_batch(np.zeros((4, 16, 16, 1), np.uint8))
    assert int(model.d_reinits.numpy()) == 1
    assert 0.01 < float(np.std(kernel.numpy())) < 0.03  # re-drawn from N(0, 0.02)


def test_calibration_api(digits_run, digits_test_images):
    images, labels = digits_test_images
    model = digits_run.model
    verdicts = model.verdicts(images)
    np.testing.assert_array_equal(verdicts["label"], model.predict(images))
    np.testing.assert_array_equal(verdicts["label"], (verdicts["score"] > model.threshold_).astype(int))
    assert ((verdicts["normalized_score"] > 0.5) == (verdicts["label"] == 1)).all()
    assert auroc(labels, model.decision_function(images)) == auroc(labels, verdicts["score"])
    uncalibrated = GANomaly(model.config)
    with pytest.raises(CalibrationError, match="not calibrated"):
        uncalibrated.predict(images[:2])


def test_wrong_image_size_is_a_clear_error(digits_run):
    with pytest.raises(ValueError, match=r"expects \(32, 32, 1\)"):
        digits_run.model.score(np.zeros((2, 28, 28, 1), np.uint8))


def test_run_directory_contents(digits_run):
    names = set(os.listdir(digits_run.run_dir))
    assert {"model.keras", "run.json", "metrics.json", "logs", "checkpoints"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary files left behind


def test_smoothed_maps_keep_shape_and_lower_noise(digits_run, digits_test_images):
    images, _ = digits_test_images
    raw = digits_run.model.anomaly_maps(images[:4])
    smooth = digits_run.model.anomaly_maps(images[:4], sigma=1.5)
    assert smooth.shape == raw.shape == (4, 32, 32)
    assert smooth.std() < raw.std()
    np.testing.assert_allclose(smooth.mean(), raw.mean(), rtol=0.05)
