"""Keras layers with faster CPU kernels for GANomaly's shapes: the same sums, the stock weights.

Four levers, each measured by benchmarks/speed.py and checked against the stock ops in
tests/test_fast_layers.py:
- Whole-image convolutions (the 4x4 -> 1x1 convolution to the latent and its 1x1 -> 4x4
  transpose in the decoder) are matrix products. oneDNN's convolution kernels took 3x longer
  for them than a matmul, forward and backward.
- On CPUs with AVX-512 BF16, oneDNN computes bfloat16 weight gradients with an older kernel
  (jit_bf16) 2-3x slower than its bfloat16 forward kernel (brgconv); it ate 40% of a
  mixed-precision step. The weight gradient of a convolution is itself a convolution (batch and
  channels swapped, the stride becoming a dilation), so it runs on the forward kernel.
- Transposed convolutions to 1 or 3 channels (the decoder's last layer, and the input gradient of
  every encoder's first layer) hit a slow oneDNN path, 10x the time their FLOPs need. A 4x4
  stride-2 transposed convolution is a 3x3 convolution to the four sub-pixel phases followed by
  depth_to_space, which runs on the fast kernel.
- BatchNormalization in training runs as one fused op (FusedBatchNormV3, forward and gradient)
  instead of Keras 3's dozen elementwise ops, with no float32 round trip under mixed precision.
GPUs keep the stock bfloat16 weight gradients (cuDNN's are fast). The layers keep the stock
weights and config, and inference-mode BatchNorm is the stock op, so what is saved, scored and
exported is unchanged.
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


# Sub-pixel phases of a 4x4, stride-2, "same" transposed convolution (padding 1): output row
# 2m + r takes input row m + offset through kernel row TAPS[r][offset], and likewise for columns.
SUBPIXEL_TAPS = ({0: 1, -1: 3}, {1: 0, 0: 2})


def subpixel_kernel(kernel):
    """(4, 4, filters, channels) transposed-conv kernel -> (3, 3, channels, 4 * filters) kernel
    of the equivalent stride-1 convolution, phase-major as depth_to_space expects."""
    kernel = tf.transpose(kernel, (0, 1, 3, 2))
    zero = tf.zeros_like(kernel[0, 0])
    rows = []
    for row_offset in (-1, 0, 1):
        columns = []
        for col_offset in (-1, 0, 1):
            phases = []
            for r in (0, 1):
                for q in (0, 1):
                    ki, kj = SUBPIXEL_TAPS[r].get(row_offset), SUBPIXEL_TAPS[q].get(col_offset)
                    phases.append(zero if ki is None or kj is None else kernel[ki, kj])
            columns.append(tf.concat(phases, -1))
        rows.append(tf.stack(columns))
    return tf.stack(rows)


def subpixel_conv_transpose(inputs, kernel):
    """conv2d_transpose(inputs, kernel, stride 2, "same") for a 4x4 kernel, on the forward kernel."""
    return tf.nn.depth_to_space(tf.nn.conv2d(inputs, subpixel_kernel(kernel), 1, "SAME"), 2)


LEVERS = ("whole_image_matmul", "subpixel", "fused_batchnorm", "bf16_weight_gradient")
_disabled: set = set()


@contextlib.contextmanager
def stock_kernels(levers: tuple = LEVERS):
    """Models traced inside run without the given levers (all of them by default) on the stock
    Keras ops: for measuring each lever, and for checking that they keep the maths."""
    unknown = set(levers) - set(LEVERS)
    if unknown:
        raise ValueError(f"unknown levers {sorted(unknown)}; the levers are {', '.join(LEVERS)}")
    global _disabled
    saved, _disabled = _disabled, _disabled | set(levers)
    try:
        yield
    finally:
        _disabled = saved


def _plain(layer, lever: str) -> bool:
    """The lever is on, and the layer has the shapes the levers are written for: channels_last,
    no dilation, groups, bias or activation."""
    return (lever not in _disabled and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1) and getattr(layer, "groups", 1) == 1
            and not layer.use_bias and layer.activation is keras.activations.linear)


def _use_forward_kernel(layer, kernel) -> bool:
    """The weight-gradient lever is for oneDNN's bfloat16 kernels; cuDNN's are fast already."""
    return (_plain(layer, "bf16_weight_gradient") and kernel.dtype == tf.bfloat16
            and not tf.config.list_logical_devices("GPU"))


def _subpixel_shape(layer, channels: int) -> bool:
    """4x4, stride 2, "same", to few channels: where oneDNN's transposed convolution is slow."""
    return (tuple(layer.kernel_size) == (4, 4) and tuple(layer.strides) == (2, 2) and layer.padding == "same"
            and channels <= 4)


def _conv2d(inputs, kernel, strides, padding: str, subpixel_input_gradient: bool, forward_kernel_weights: bool):
    @tf.custom_gradient
    def conv(x, w):
        def grad(dy):
            if subpixel_input_gradient:
                dx = subpixel_conv_transpose(dy, w)
            else:
                dx = tf.nn.conv2d_transpose(dy, w, tf.shape(x), strides, padding.upper())
            if forward_kernel_weights:
                dw = filter_gradient(x, dy, w.shape[:2], strides, padding)
            else:
                dw = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                                                     strides=[1, *strides, 1], padding=padding.upper())
            return dx, dw
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
        if _plain(self, "whole_image_matmul") and self.padding == "valid" \
                and tuple(inputs.shape[1:3]) == tuple(self.kernel_size):
            # The kernel covers the whole input: (N, kh, kw, C) -> (N, 1, 1, filters) is a matmul.
            flat = tf.matmul(tf.reshape(inputs, (-1, int(np.prod(kernel.shape[:3])))),
                             tf.reshape(kernel, (-1, self.filters)))
            return tf.reshape(flat, (-1, 1, 1, self.filters))
        # Its input gradient is the transposed convolution; padding (1, 1) needs an even size.
        subpixel = (_plain(self, "subpixel") and _subpixel_shape(self, inputs.shape[-1])
                    and inputs.shape[1] % 2 == 0 and inputs.shape[2] % 2 == 0)
        forward_kernel_weights = _use_forward_kernel(self, kernel)
        if subpixel or forward_kernel_weights:
            return _conv2d(inputs, kernel, list(self.strides), self.padding, subpixel, forward_kernel_weights)
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfganomaly")
class Conv2DTranspose(layers.Conv2DTranspose):
    """keras Conv2DTranspose with the faster kernels."""

    def call(self, inputs):
        kernel = tf.convert_to_tensor(self.kernel)  # (kh, kw, filters, channels in)
        if _plain(self, "whole_image_matmul") and self.padding == "valid" \
                and tuple(inputs.shape[1:3]) == (1, 1):
            # One input pixel spreads over the kernel: (N, 1, 1, C) -> (N, kh, kw, filters) is a matmul.
            flat = tf.matmul(tf.reshape(inputs, (-1, kernel.shape[3])), tf.reshape(kernel, (-1, kernel.shape[3])),
                             transpose_b=True)
            return tf.reshape(flat, (-1, *kernel.shape[:3]))
        if _plain(self, "subpixel") and _subpixel_shape(self, self.filters):
            return subpixel_conv_transpose(inputs, kernel)
        if _use_forward_kernel(self, kernel):
            batch = tf.shape(inputs)[0]
            output_shape = self.compute_output_shape(inputs.shape)
            return _conv2d_transpose(inputs, kernel, tf.stack([batch, *output_shape[1:]]),
                                     list(self.strides), self.padding)
        return super().call(inputs)


@keras.saving.register_keras_serializable(package="tfganomaly")
class BatchNormalization(layers.BatchNormalization):
    """keras BatchNormalization whose training mode on NHWC batches is one fused op.

    The moving variance keeps Keras's biased estimate (the fused op returns the unbiased one);
    synchronized, masked or frozen BatchNorm and inference take the stock path.
    """

    def call(self, inputs, training=None, mask=None):
        fused = ("fused_batchnorm" not in _disabled and training and self.trainable and mask is None
                 and not self.synchronized and not self.renorm and self.scale and self.center
                 and len(inputs.shape) == 4 and self.axis in (3, -1))
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        empty = tf.constant([], tf.float32)
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
            mean=empty, variance=empty, epsilon=self.epsilon, exponential_avg_factor=1.0,
            data_format="NHWC", is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
