"""Conv2D and Conv2DTranspose with faster kernels for GANomaly's shapes on CPUs: the same sums.

Two levers, each measured by benchmarks/speed.py and checked against the stock ops in
tests/test_convolution.py:
- Whole-image convolutions (the 4x4 -> 1x1 convolution to the latent and its 1x1 -> 4x4
  transpose in the decoder) are matrix products. oneDNN's convolution kernels took 3x longer
  for them than a matmul, forward and backward.
- On CPUs with AVX-512 BF16, oneDNN computes bfloat16 weight gradients with an older kernel
  (jit_bf16) 2-3x slower than its bfloat16 forward kernel (brgconv); it ate 40% of a
  mixed-precision step. The weight gradient of a convolution is itself a convolution (batch and
  channels swapped, the stride becoming a dilation), so it runs on the forward kernel.
GPUs keep the stock bfloat16 weight gradients (cuDNN's are fast). The layers keep the stock
weights and config, so saved models load into stock Keras layers too.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf
from keras import layers


def filter_gradient(inputs, out_grad, kernel_size, strides, padding: str):
    """dL/dW of y = conv2d(inputs, W) from dL/dy, as one forward convolution.

    dW[a, b, c, o] = sum over n, i, j of inputs_padded[n, s*i + a, s*j + b, c] * dy[n, i, j, o]:
    a convolution of inputs (channels as batch, batch as channels) by dy, dilated by s.
    """
    kh, kw = kernel_size
    sh, sw = strides
    if padding == "same":
        pads = []
        for size, out, k, s in ((inputs.shape[1], out_grad.shape[1], kh, sh),
                                (inputs.shape[2], out_grad.shape[2], kw, sw)):
            total = max((out - 1) * s + k - size, 0)
            pads.append([total // 2, total - total // 2])
        inputs = tf.pad(inputs, [[0, 0], *pads, [0, 0]])
    gradient = tf.nn.conv2d(tf.transpose(inputs, (3, 1, 2, 0)), tf.transpose(out_grad, (1, 2, 0, 3)),
                            strides=1, padding="VALID", dilations=[sh, sw])
    return tf.transpose(gradient[:, :kh, :kw, :], (1, 2, 0, 3))


_levers_enabled = True


@contextlib.contextmanager
def stock_kernels():
    """Models traced inside use the stock Keras ops: for measuring the levers, and for checking
    that they keep the maths."""
    global _levers_enabled
    saved, _levers_enabled = _levers_enabled, False
    try:
        yield
    finally:
        _levers_enabled = saved


def _plain(layer) -> bool:
    """The shapes the levers are written for: channels_last, no dilation, groups, bias or activation."""
    return (_levers_enabled and layer.data_format == "channels_last" and tuple(layer.dilation_rate) == (1, 1)
            and getattr(layer, "groups", 1) == 1 and not layer.use_bias
            and layer.activation is keras.activations.linear)


def _use_forward_kernel(layer, kernel) -> bool:
    """The weight-gradient lever is for oneDNN's bfloat16 kernels; cuDNN's are fast already."""
    return _plain(layer) and kernel.dtype == tf.bfloat16 and not tf.config.list_logical_devices("GPU")


def _conv2d(inputs, kernel, strides, padding: str):
    @tf.custom_gradient
    def conv(x, w):
        def grad(dy):
            dx = tf.nn.conv2d_transpose(dy, w, tf.shape(x), strides, padding.upper())
            return dx, filter_gradient(x, dy, w.shape[:2], strides, padding)
        return tf.nn.conv2d(x, w, strides, padding.upper()), grad
    return conv(inputs, kernel)


def _conv2d_transpose(inputs, kernel, output_shape, strides, padding: str):
    @tf.custom_gradient
    def conv_transpose(x, w):
        def grad(dy):
            # y = conv2d_transpose(x, W) is the input gradient of conv2d(., W): roles swap.
            dx = tf.nn.conv2d(dy, w, strides, padding.upper())
            return dx, filter_gradient(dy, x, w.shape[:2], strides, padding)
        return tf.nn.conv2d_transpose(x, w, output_shape, strides, padding.upper()), grad
    return conv_transpose(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfganomaly")
class Conv2D(layers.Conv2D):
    """keras Conv2D with the faster kernels."""

    def convolution_op(self, inputs, kernel):
        kernel = tf.convert_to_tensor(kernel)  # (kh, kw, channels in, filters)
        if _plain(self) and self.padding == "valid" and tuple(inputs.shape[1:3]) == tuple(self.kernel_size):
            # The kernel covers the whole input: (N, kh, kw, C) -> (N, 1, 1, filters) is a matmul.
            flat = tf.matmul(tf.reshape(inputs, (-1, int(np.prod(kernel.shape[:3])))),
                             tf.reshape(kernel, (-1, self.filters)))
            return tf.reshape(flat, (-1, 1, 1, self.filters))
        if _use_forward_kernel(self, kernel):
            return _conv2d(inputs, kernel, list(self.strides), self.padding)
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfganomaly")
class Conv2DTranspose(layers.Conv2DTranspose):
    """keras Conv2DTranspose with the faster kernels."""

    def call(self, inputs):
        kernel = tf.convert_to_tensor(self.kernel)  # (kh, kw, filters, channels in)
        if _plain(self) and self.padding == "valid" and tuple(inputs.shape[1:3]) == (1, 1):
            # One input pixel spreads over the kernel: (N, 1, 1, C) -> (N, kh, kw, filters) is a matmul.
            flat = tf.matmul(tf.reshape(inputs, (-1, kernel.shape[3])), tf.reshape(kernel, (-1, kernel.shape[3])),
                             transpose_b=True)
            return tf.reshape(flat, (-1, *kernel.shape[:3]))
        if _use_forward_kernel(self, kernel):
            batch = tf.shape(inputs)[0]
            output_shape = self.compute_output_shape(inputs.shape)
            return _conv2d_transpose(inputs, kernel, tf.stack([batch, *output_shape[1:]]),
                                     list(self.strides), self.padding)
        return super().call(inputs)
