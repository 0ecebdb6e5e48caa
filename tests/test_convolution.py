"""The speed levers must keep the maths: same outputs and gradients as the stock Keras ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfganomaly import convolution
from tfganomaly.config import GANomalyConfig
from tfganomaly.convolution import filter_gradient
from tfganomaly.model import GANomaly


@pytest.mark.parametrize("batch,size,cin,cout,kernel,stride,padding,out", [
    (4, 16, 8, 16, 4, 2, "same", 8),     # pyramid blocks
    (4, 4, 16, 10, 4, 1, "valid", 1),    # final conv to the latent
    (3, 32, 3, 8, 4, 2, "same", 16),     # first block, RGB
    (2, 5, 3, 4, 3, 1, "same", 5),       # extra layers, odd size
])
def test_filter_gradient_equals_the_stock_backward_weights(batch, size, cin, cout, kernel, stride, padding, out):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, size, size, cin)), tf.float32)
    dy = tf.constant(rng.normal(size=(batch, out, out, cout)), tf.float32)
    stock = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[kernel, kernel, cin, cout], out_backprop=dy,
                                            strides=[1, stride, stride, 1], padding=padding.upper())
    np.testing.assert_allclose(filter_gradient(x, dy, (kernel, kernel), (stride, stride), padding).numpy(),
                               stock.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("layer_class,kwargs,input_shape", [
    ("Conv2D", dict(strides=2, padding="same"), (8, 16, 16, 32)),         # pyramid block
    ("Conv2D", dict(strides=1, padding="valid"), (8, 4, 4, 64)),          # whole image: to the latent
    ("Conv2DTranspose", dict(strides=2, padding="same"), (8, 8, 8, 32)),  # decoder pyramid
    ("Conv2DTranspose", dict(strides=1, padding="valid"), (8, 1, 1, 32)), # whole image: from the latent
])
def test_layers_match_the_stock_keras_layers(precision, layer_class, kwargs, input_shape):
    keras.mixed_precision.set_global_policy(precision)
    try:
        ours = getattr(convolution, layer_class)(16, 4, use_bias=False, **kwargs)
        stock = getattr(keras.layers, layer_class)(16, 4, use_bias=False, **kwargs)
        ours.build(input_shape)
        stock.build(input_shape)
        stock.kernel.assign(ours.kernel)
        x = tf.constant(np.random.default_rng(0).normal(size=input_shape), tf.float32)
        results = []
        for layer in (ours, stock):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
            results.append([tf.cast(t, tf.float32).numpy() for t in [y, *tape.gradient(loss, [x, layer.kernel])]])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tolerance = 1e-5 if precision == "float32" else 1e-2
    for a, b in zip(*results):
        assert a.shape == b.shape
        assert np.linalg.norm(a - b) <= tolerance * np.linalg.norm(b)


def _step_gradients(model, images):
    g_vars, d_vars = model.generator_variables, model.discriminator.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_losses(images)
    return [g.numpy() for g in tape.gradient(losses["g_loss"], g_vars) + tape.gradient(losses["d_loss"], d_vars)]


def test_bfloat16_training_step_has_the_stock_gradients(monkeypatch):
    """Whole step, same weights and batch: the lever's gradients match the stock kernels' to bf16 noise."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = GANomaly(GANomalyConfig(isize=32, ngf=16, ndf=16, nz=20, precision="mixed_bfloat16"))
        images = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 1)).astype(np.uint8)
        used = []
        original = convolution._use_forward_kernel
        monkeypatch.setattr(convolution, "_use_forward_kernel",
                            lambda layer, k: used.append(original(layer, k)) or used[-1])
        fast = _step_gradients(model, images)
        assert used and all(used)
        with convolution.stock_kernels():
            stock = _step_gradients(model, images)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert len(fast) == len(stock) == len(model.generator_variables) + len(model.discriminator.trainable_variables)
    for a, b in zip(fast, stock):
        assert np.linalg.norm(a - b) <= 2e-2 * np.linalg.norm(b) + 1e-6
