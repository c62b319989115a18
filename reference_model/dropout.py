"""The discriminator's dropout: keep probability 1 - rate in every precision, from 16 random bits.

Keras's Dropout draws one uniform number per element in the layer's compute dtype. Under
mixed_bfloat16 that uniform has 7 mantissa bits (steps of 1/128) and the rate itself rounds to
bfloat16 (0.2 -> 0.2002), so 0.2 drops 26/128 of the elements: it keeps 0.797, not the
reference's 0.8, and the expected activation shrinks by 0.4%. Converting Philox's words to
bfloat16 uniforms also made the draw the most expensive non-convolution op of the training
step (docs/training-performance.md).

This layer takes two 16-bit lanes from each 32-bit Philox word and keeps an element when its
lane is at least round(rate * 2^16): the keep probability is 1 - rate to within 2^-17 whatever
the policy, and the draw costs half the Philox words and no float conversion. Scaling and the
gradient are those of `tf.nn.experimental.stateless_dropout`: kept elements times 1 / (1 - rate).
"""
from __future__ import annotations

import keras
import tensorflow as tf

LANE_BITS = 16
LANES_PER_WORD = 32 // LANE_BITS


def keep_mask(shape: tf.Tensor, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """A boolean mask of `shape`, each element True with probability 1 - rate (to 2^-17),
    drawn from the stateless Philox stream of `seed` (int32, shape (2,))."""
    size = tf.reduce_prod(shape)
    words = (size + LANES_PER_WORD - 1) // LANES_PER_WORD
    bits = tf.random.stateless_uniform([words], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    lanes = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
    threshold = tf.constant(round(rate * (1 << LANE_BITS)), tf.uint16)
    return tf.reshape(lanes >= threshold, shape)


def _int32_seed(seed: tf.Tensor) -> tf.Tensor:
    """Keras keeps seed state in int64; TensorFlow's stateless ops take int32 (as Keras's own
    TensorFlow backend converts it)."""
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


@keras.saving.register_keras_serializable(package="reference_model")
class ReferenceDropout(keras.layers.Dropout):
    """Dropout with the reference's keep probability under any precision policy (module doc)."""

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        if self.rate == 1.0:
            return tf.zeros_like(inputs)
        if self.noise_shape is not None:
            raise ValueError("ReferenceDropout draws one mask element per input element; "
                             "noise_shape is not supported")
        keep = keep_mask(tf.shape(inputs), self.rate, _int32_seed(self.seed_generator.next()))
        scale = tf.constant(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros((), inputs.dtype))
