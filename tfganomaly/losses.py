"""GANomaly's loss terms as plain tensor functions: they know nothing about Keras models.

Each returns a scalar mean over the batch, in float32 whatever the compute dtype, so that
mixed precision never changes the loss that is optimised or reported.
"""

from __future__ import annotations

from keras import ops


def _f32(x):
    return ops.cast(x, "float32")


def adversarial_loss(real_features, fake_features):
    """Feature matching: L2 between the discriminator's hidden features of x and G(x)."""
    return ops.mean(ops.square(_f32(real_features) - _f32(fake_features)))


def contextual_loss(images, reconstructions):
    """L1 between the input and its reconstruction."""
    return ops.mean(ops.abs(_f32(images) - _f32(reconstructions)))


def encoder_loss(latent, latent_reconstructed):
    """L2 between GE(x) and E(G(x)): the latent the score is built on."""
    return ops.mean(ops.square(_f32(latent) - _f32(latent_reconstructed)))


def discriminator_loss(real_logits, fake_logits):
    """Binary cross-entropy, real images labelled 1 and generated ones 0, averaged like the reference."""
    real_logits, fake_logits = _f32(real_logits), _f32(fake_logits)
    real = ops.binary_crossentropy(ops.ones_like(real_logits), real_logits, from_logits=True)
    fake = ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True)
    return 0.5 * (ops.mean(real) + ops.mean(fake))
