"""The speed levers must keep the maths: same outputs and gradients as the stock Keras ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfganomaly import fast_layers
from tfganomaly.config import GANomalyConfig
from tfganomaly.fast_layers import filter_gradient
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
@pytest.mark.parametrize("layer_class,filters,kwargs,input_shape", [
    ("Conv2D", 16, dict(strides=2, padding="same"), (8, 16, 16, 32)),          # pyramid block
    ("Conv2D", 16, dict(strides=2, padding="same"), (8, 16, 16, 3)),           # first block: sub-pixel input gradient
    ("Conv2D", 16, dict(strides=1, padding="valid"), (8, 4, 4, 64)),           # whole image: to the latent
    ("Conv2DTranspose", 16, dict(strides=2, padding="same"), (8, 8, 8, 32)),   # decoder pyramid
    ("Conv2DTranspose", 1, dict(strides=2, padding="same"), (8, 8, 8, 32)),    # last decoder layer: sub-pixel
    ("Conv2DTranspose", 3, dict(strides=2, padding="same"), (8, 8, 8, 32)),
    ("Conv2DTranspose", 16, dict(strides=1, padding="valid"), (8, 1, 1, 32)),  # whole image: from the latent
])
def test_layers_match_the_stock_keras_layers(precision, layer_class, filters, kwargs, input_shape):
    keras.mixed_precision.set_global_policy(precision)
    try:
        ours = getattr(fast_layers, layer_class)(filters, 4, use_bias=False, **kwargs)
        stock = getattr(keras.layers, layer_class)(filters, 4, use_bias=False, **kwargs)
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


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_fused_batchnorm_matches_the_stock_layer(precision):
    """Training mode: same outputs, same gradients for x, gamma and beta, same moving statistics."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        shape = (8, 6, 6, 16)
        ours, stock = fast_layers.BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
        ours.build(shape)
        stock.build(shape)
        rng = np.random.default_rng(0)
        for layer in (ours, stock):
            layer.gamma.assign(rng.normal(1.0, 0.1, 16).astype("float32") if layer is ours else ours.gamma.numpy())
        x = tf.constant(rng.normal(2.0, 3.0, size=shape), tf.float32)
        results = []
        for layer in (ours, stock):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)
            grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
            results.append([tf.cast(t, tf.float32).numpy() for t in [y, *grads, layer.moving_mean, layer.moving_variance]])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tolerance = 1e-4 if precision == "float32" else 2e-2
    for a, b in zip(*results):
        assert np.linalg.norm(a - b) <= tolerance * np.linalg.norm(b)


def _step_gradients(model, images):
    g_vars, d_vars = model.generator_variables, model.discriminator.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_losses(images)
    return [g.numpy() for g in tape.gradient(losses["g_loss"], g_vars) + tape.gradient(losses["d_loss"], d_vars)]


@pytest.mark.parametrize("precision,tolerance", [("float32", 1e-4), ("mixed_bfloat16", 2e-2)])
def test_training_step_has_the_stock_gradients(precision, tolerance):
    """Whole step, same weights and batch, every lever on: the gradients of both losses match the
    stock Keras ops' (to rounding, or to bfloat16 noise)."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = GANomaly(GANomalyConfig(isize=32, ngf=16, ndf=16, nz=20, precision=precision))
        images = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 1)).astype(np.uint8)
        fast = _step_gradients(model, images)
        with fast_layers.stock_kernels():
            stock = _step_gradients(model, images)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert len(fast) == len(stock) == len(model.generator_variables) + len(model.discriminator.trainable_variables)
    for a, b in zip(fast, stock):
        assert np.linalg.norm(a - b) <= tolerance * np.linalg.norm(b) + 1e-6


def test_levers_apply_where_they_are_meant_to():
    """Guards the dispatch: the paths the speed numbers were measured on are the ones taken."""
    layer = fast_layers.Conv2D(8, 4, strides=2, padding="same", use_bias=False)
    layer.build((2, 16, 16, 1))
    bf16 = tf.zeros((4, 4, 1, 8), tf.bfloat16)
    assert fast_layers._use_forward_kernel(layer, bf16) == (not tf.config.list_logical_devices("GPU"))
    assert not fast_layers._use_forward_kernel(layer, tf.zeros((4, 4, 1, 8)))
    assert fast_layers._subpixel_shape(layer, 1) and not fast_layers._subpixel_shape(layer, 64)
    with fast_layers.stock_kernels(("subpixel",)):
        assert not fast_layers._plain(layer, "subpixel") and fast_layers._plain(layer, "whole_image_matmul")
    with fast_layers.stock_kernels():
        assert not any(fast_layers._plain(layer, lever) for lever in fast_layers.LEVERS)
    assert all(fast_layers._plain(layer, lever) for lever in fast_layers.LEVERS)
    with pytest.raises(ValueError, match="unknown levers"):
        with fast_layers.stock_kernels(("xla",)):
            pass
