"""The discriminator's dropout keeps 1 - rate of its inputs in every precision, scaled as Keras
scales them, with Keras's gradient; Keras's own Dropout keeps 0.797 under mixed_bfloat16."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from reference_model.dropout import ReferenceDropout, keep_mask

SHAPE = (8, 25, 25, 25, 32)  # the fixed discriminator's first dropout: 4 million elements
# The kept fraction of 4 million Bernoulli(0.8) draws has a standard deviation of 2e-4.
KEEP_TOLERANCE = 1e-3


def _kept_fraction(layer: keras.layers.Layer, dtype: str) -> float:
    out = layer(tf.ones(SHAPE, dtype), training=True)
    return float(tf.reduce_mean(tf.cast(out != 0, tf.float64)))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_keeps_one_minus_rate_in_every_precision(dtype):
    assert abs(_kept_fraction(ReferenceDropout(0.2, seed=1, dtype=dtype), dtype) - 0.8) < KEEP_TOLERANCE


def test_keras_dropout_keeps_less_under_bfloat16():
    """Why the layer exists: Keras's bfloat16 uniform has steps of 1/128, so rate 0.2 keeps 102/128."""
    kept = _kept_fraction(keras.layers.Dropout(0.2, seed=1, dtype="bfloat16"), "bfloat16")
    assert abs(kept - 102 / 128) < KEEP_TOLERANCE and abs(kept - 0.8) > 2 * KEEP_TOLERANCE


@pytest.mark.parametrize("rate", [0.05, 0.5, 0.9])
def test_mask_probability_follows_the_rate(rate):
    mask = keep_mask(tf.constant([1_000_001]), rate, tf.constant([3, 4], tf.int32))
    assert mask.shape == (1_000_001,)
    assert abs(float(tf.reduce_mean(tf.cast(mask, tf.float64))) - (1 - rate)) < 2e-3


def test_kept_elements_are_scaled_and_dropped_ones_are_zero():
    x = tf.random.stateless_uniform((4, 9, 9, 9, 8), seed=(0, 1), minval=0.5, maxval=2.0)
    out = ReferenceDropout(0.2, seed=2)(x, training=True).numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x.numpy()[kept] * 1.25, rtol=1e-6)
    assert 0 < kept.mean() < 1


def test_gradient_is_the_scaled_mask():
    layer = ReferenceDropout(0.2, seed=3)
    x = tf.Variable(tf.ones((2, 7, 7, 7, 4)))
    with tf.GradientTape() as tape:
        out = layer(x, training=True)
    grad = tape.gradient(out, x).numpy()
    np.testing.assert_array_equal(grad, np.where(out.numpy() != 0, 1.25, 0.0).astype(np.float32))


def test_inference_is_identity_and_masks_follow_the_seed_state():
    x = tf.ones((2, 5, 5, 5, 4))
    a, b = ReferenceDropout(0.2, seed=4), ReferenceDropout(0.2, seed=4)
    assert np.array_equal(a(x, training=False).numpy(), x.numpy())
    first = a(x, training=True).numpy()
    assert np.array_equal(first, b(x, training=True).numpy()), "same seed state, same mask"
    assert not np.array_equal(first, a(x, training=True).numpy()), "the state advances per call"


def test_rate_one_drops_everything_and_noise_shape_is_refused():
    assert not ReferenceDropout(1.0)(tf.ones((2, 3)), training=True).numpy().any()
    with pytest.raises(ValueError, match="noise_shape"):
        ReferenceDropout(0.2, noise_shape=(1, 3))(tf.ones((2, 3)), training=True)
