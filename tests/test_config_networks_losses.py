import numpy as np
import pytest
import tensorflow as tf

from tfganomaly.config import GANomalyConfig
from tfganomaly.errors import ConfigError
from tfganomaly.losses import adversarial_loss, contextual_loss, discriminator_loss, encoder_loss
from tfganomaly.networks import build_decoder, build_discriminator, build_encoder


@pytest.mark.parametrize("isize,depth", [(16, 128), (32, 256), (64, 512)])
def test_network_shapes(isize, depth):
    enc = build_encoder(isize, 3, 100, 64)
    dec = build_decoder(isize, 3, 100, 64)
    disc = build_discriminator(isize, 3, 64)
    x = tf.random.uniform((2, isize, isize, 3), -1, 1)
    z = enc(x)
    assert z.shape == (2, 1, 1, 100)
    y = dec(z)
    assert y.shape == (2, isize, isize, 3)
    assert float(tf.reduce_max(tf.abs(y))) <= 1.0  # tanh range
    logit, features = disc(x)
    assert logit.shape == (2, 1) and features.shape == (2, 4, 4, depth)


def test_networks_follow_dcgan_conventions():
    enc = build_encoder(32, 1, 100, 64, extra_layers=1)
    kernels = [w for w in enc.weights if w.name == "kernel"]
    assert all(k.shape[0] in (3, 4) for k in kernels)
    first = enc.get_layer("initial_conv").kernel.numpy()
    assert abs(first.std() - 0.02) < 0.005 and abs(first.mean()) < 0.005
    bns = [layer for layer in enc.layers if "bn" in layer.name]
    assert bns and all(abs(bn.momentum - 0.9) < 1e-9 and abs(bn.epsilon - 1e-5) < 1e-12 for bn in bns)
    assert "bn" not in enc.layers[2].name  # no BatchNorm on the first block


def test_losses_match_their_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 8)).astype("float32"), rng.normal(size=(4, 8)).astype("float32")
    np.testing.assert_allclose(float(adversarial_loss(a, b)), np.mean((a - b) ** 2), rtol=1e-5)
    np.testing.assert_allclose(float(contextual_loss(a, b)), np.mean(np.abs(a - b)), rtol=1e-5)
    np.testing.assert_allclose(float(encoder_loss(a, b)), np.mean((a - b) ** 2), rtol=1e-5)
    real, fake = np.array([2.0, -1.0], "float32"), np.array([0.5, -3.0], "float32")
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    expected = 0.5 * (np.mean(-np.log(sig(real))) + np.mean(-np.log(1 - sig(fake))))
    np.testing.assert_allclose(float(discriminator_loss(real, fake)), expected, rtol=1e-5)


@pytest.mark.parametrize("changes,fragment", [
    ({"isize": 48}, "power of two"), ({"isize": 8}, "at least 16"), ({"isize": 100}, "use 64 or 128"),
    ({"nc": 2}, "nc must be 1"), ({"w_con": -1.0}, "w_con"), ({"lr": 0.0}, "lr"),
    ({"resize": "lanczos9"}, "resize"), ({"batch_size": 0}, "batch_size"), ({"isize": 32.0}, "integer"),
])
def test_bad_config_fails_at_once(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        GANomalyConfig(**changes)


def test_config_json_round_trip():
    config = GANomalyConfig(isize=64, nc=3, w_con=40.0, seed=7)
    assert GANomalyConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="unknown config keys"):
        GANomalyConfig.from_dict({"isize": 32, "bogus": 1})
