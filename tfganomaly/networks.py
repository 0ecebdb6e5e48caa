"""DCGAN building blocks of GANomaly: plain functions that return functional Keras models.

The layer stack mirrors the reference PyTorch code (4x4 kernels, stride 2, no conv bias,
BatchNorm on every block but the first). BatchNorm uses PyTorch's statistics (momentum 0.1
is Keras momentum 0.9, epsilon 1e-5): Keras's 0.99 leaves the moving averages far from the
data after a short run, which wrecks inference-mode scores.
"""

from __future__ import annotations

import keras
from keras import layers

from .fast_layers import BatchNormalization, Conv2D, Conv2DTranspose

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
LEAKY_SLOPE = 0.2


def conv_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def batch_norm(name: str, synchronized: bool = False) -> BatchNormalization:
    """synchronized=True computes batch statistics over all replicas (sync BN)."""
    return BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        synchronized=synchronized,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        name=name,
    )


def _conv(filters: int, kernel: int, strides: int, padding: str, name: str) -> Conv2D:
    return Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                  kernel_initializer=conv_init(), name=name)


def _encoder_trunk(x, isize: int, ndf: int, extra_layers: int, prefix: str, sync_bn: bool = False):
    """Conv stack from isize down to 4x4; returns the last hidden feature map."""
    x = _conv(ndf, 4, 2, "same", f"{prefix}initial_conv")(x)
    x = layers.LeakyReLU(LEAKY_SLOPE, name=f"{prefix}initial_relu")(x)
    size, filters = isize // 2, ndf
    for i in range(extra_layers):
        x = _conv(filters, 3, 1, "same", f"{prefix}extra{i}_conv")(x)
        x = batch_norm(f"{prefix}extra{i}_bn", sync_bn)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"{prefix}extra{i}_relu")(x)
    while size > 4:
        filters *= 2
        size //= 2
        x = _conv(filters, 4, 2, "same", f"{prefix}pyramid{filters}_conv")(x)
        x = batch_norm(f"{prefix}pyramid{filters}_bn", sync_bn)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"{prefix}pyramid{filters}_relu")(x)
    return x


def build_encoder(isize: int, nc: int, nz: int, ndf: int, extra_layers: int = 0,
                  name: str = "encoder", sync_bn: bool = False) -> keras.Model:
    """Image (isize, isize, nc) in [-1, 1] -> latent (1, 1, nz)."""
    inputs = keras.Input((isize, isize, nc), name=f"{name}_image")
    x = _encoder_trunk(inputs, isize, ndf, extra_layers, prefix="", sync_bn=sync_bn)
    latent = _conv(nz, 4, 1, "valid", "final_conv")(x)
    return keras.Model(inputs, latent, name=name)


def build_decoder(isize: int, nc: int, nz: int, ngf: int, extra_layers: int = 0,
                  name: str = "decoder", sync_bn: bool = False) -> keras.Model:
    """Latent (1, 1, nz) -> image (isize, isize, nc) in [-1, 1], the encoder's mirror image."""
    filters, size = ngf // 2, 4
    while size < isize:  # terminates for any isize: the config also insists on a power of two
        filters *= 2
        size *= 2
    inputs = keras.Input((1, 1, nz), name=f"{name}_latent")
    x = Conv2DTranspose(filters, 4, strides=1, padding="valid", use_bias=False,
                        kernel_initializer=conv_init(), name="initial_deconv")(inputs)
    x = batch_norm("initial_bn", sync_bn)(x)
    x = layers.ReLU(name="initial_relu")(x)
    size = 4
    while size < isize // 2:
        filters //= 2
        size *= 2
        x = Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                            kernel_initializer=conv_init(), name=f"pyramid{filters}_deconv")(x)
        x = batch_norm(f"pyramid{filters}_bn", sync_bn)(x)
        x = layers.ReLU(name=f"pyramid{filters}_relu")(x)
    for i in range(extra_layers):
        x = _conv(filters, 3, 1, "same", f"extra{i}_conv")(x)
        x = batch_norm(f"extra{i}_bn", sync_bn)(x)
        x = layers.ReLU(name=f"extra{i}_relu")(x)
    x = Conv2DTranspose(nc, 4, strides=2, padding="same", use_bias=False,
                        kernel_initializer=conv_init(), name="final_deconv")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(inputs, outputs, name=name)


def build_discriminator(isize: int, nc: int, ndf: int, extra_layers: int = 0,
                        name: str = "discriminator", sync_bn: bool = False) -> keras.Model:
    """Image -> (real/fake logit per image, last hidden features for feature matching).

    It returns a logit rather than the reference's sigmoid output: the BCE is then computed
    from logits, which is the same loss without the overflow at saturation.
    """
    inputs = keras.Input((isize, isize, nc), name=f"{name}_image")
    features = _encoder_trunk(inputs, isize, ndf, extra_layers, prefix="", sync_bn=sync_bn)
    logit = _conv(1, 4, 1, "valid", "classifier_conv")(features)
    logit = layers.Reshape((1,), dtype="float32", name="logit")(logit)
    return keras.Model(inputs, [logit, features], name=name)
