"""The polyphase form of up-sample -> pad -> convolve computes the same sums, and the variable-angle
generator run that way in training (`PolyphaseGenerator`) is the same function of the same
variables: forward pass, every gradient and BatchNorm's moving statistics."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from reference_model.polyphase import PhaseAxis, PolyphaseGenerator, phase_axes, upsampled_conv
from reference_model.specs import get_spec

# float32 summation order only (measured about 1e-7 for the small op, 1e-6 through conv1's sums).
TOLERANCE = 1e-5


@pytest.mark.parametrize("factor,kernel,pad", [(2, 6, 2), (2, 5, 2), (2, 8, 0), (3, 8, 3), (2, 3, 1),
                                                (6, 6, 0), (6, 8, 0)])  # the last two: the angle's conv1
def test_phase_axis_matches_upsample_pad_convolve_in_1d(factor, kernel, pad):
    """Brute force on one axis: nearest up-sampling, zero padding, valid conv."""
    rng = np.random.default_rng(factor * 100 + kernel * 10 + pad)
    inputs = 7
    x, w = rng.standard_normal(inputs), rng.standard_normal(kernel)
    padded = np.pad(np.repeat(x, factor), (pad, pad))
    expected = np.array([padded[o:o + kernel] @ w for o in range(len(padded) - kernel + 1)])
    axis = PhaseAxis(factor, kernel, pad, inputs, len(expected))
    low = np.pad(x, axis.low_pad)
    taps = np.einsum("rjk,k->rj", axis.tap_map(), w)
    blocks = np.array([[low[q:q + axis.taps] @ taps[r] for r in range(factor)]
                       for q in range(axis.blocks)]).reshape(-1)
    actual = blocks[axis.crop_start:axis.crop_start + axis.outputs]
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


def _relative(expected, actual) -> float:
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def test_upsampled_conv_and_its_gradients_equal_the_up_sampled_convolution():
    """The op training runs: forward, input gradient and kernel gradient (through the in-graph
    phase kernel) against UpSampling3D -> Conv3D, on an anisotropic case with a partial block."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 4, 3, 5, 3)), tf.float32)
    kernel = tf.constant(rng.standard_normal((3, 4, 5, 3, 2)), tf.float32)
    up = keras.layers.UpSampling3D((2, 3, 2))
    conv = keras.layers.Conv3D(2, (3, 4, 5), padding="valid", use_bias=False)
    conv(up(keras.Input((4, 3, 5, 3))))  # built, with the shapes phase_axes reads
    conv.set_weights([kernel.numpy()])
    upstream = tf.constant(rng.standard_normal((2, *conv.output.shape[1:])), tf.float32)

    def forward_and_gradients(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = fn()
            loss = tf.reduce_sum(y * upstream)
        return [y, *tape.gradient(loss, [x, kernel])]

    expected = forward_and_gradients(lambda: tf.nn.conv3d(up(x), kernel, [1] * 5, "VALID"))
    actual = forward_and_gradients(lambda: upsampled_conv(x, kernel, phase_axes(up, None, conv)))
    assert expected[0].shape == actual[0].shape == (2, 6, 6, 6, 2)
    for name, e, a in zip(("forward", "d/dx", "d/dkernel"), expected, actual):
        assert _relative(e, a) <= TOLERANCE, name


@pytest.fixture(scope="module")
def integer_angle_generator():
    """The angle generator with small-integer dense and conv1 weights: conv1's sums are then exact
    in float32 in any order, so both forms give bit-identical activations after conv1 and the
    test sees wiring (a missed layer, the wrong bias, BN in the wrong mode), not rounding."""
    keras.utils.set_random_seed(0)
    generator = get_spec("3dgan-angle").build_generator()
    rng = np.random.default_rng(1)
    for name in ("dense", "conv1"):
        kernel, bias = generator.get_layer(name).get_weights()
        generator.get_layer(name).set_weights([rng.integers(-1, 2, kernel.shape), rng.integers(-2, 3, bias.shape)])
    for layer in generator.layers:
        if isinstance(layer, keras.layers.Conv3D) and layer.name != "conv1":
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape)])
    return generator


@pytest.mark.parametrize("training", [True, False])
def test_the_angle_generator_in_phases_is_the_same_function_of_the_same_variables(integer_angle_generator,
                                                                                  training):
    generator = integer_angle_generator
    phases = PolyphaseGenerator(generator, "up1", "conv1")
    rng = np.random.default_rng(2)
    latent = tf.constant(rng.integers(-2, 3, (2, generator.input.shape[1])), tf.float32)
    upstream = tf.constant(rng.standard_normal((2, 51, 51, 25, 1)), tf.float32)
    statistics = [v for v in generator.non_trainable_variables if "moving" in v.path]
    start = [v.numpy() for v in statistics]

    def run(fn):
        with tf.GradientTape() as tape:
            y = fn(latent, training=training)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [v.value for v in generator.trainable_variables])
        moved = [v.numpy() for v in statistics]
        for variable, value in zip(statistics, start):
            variable.assign(value)
        return y.numpy(), [g.numpy() for g in grads], moved

    expected, actual = run(tf.function(generator)), run(tf.function(phases))
    np.testing.assert_array_equal(actual[0], expected[0])
    for variable, e, a in zip(generator.trainable_variables, expected[1], actual[1]):
        exact = variable.path.split("/")[0] not in ("dense", "conv1")  # after conv1: identical inputs
        assert _relative(e, a) <= (0.0 if exact else TOLERANCE), variable.path
    for e, a in zip(expected[2], actual[2]):
        np.testing.assert_array_equal(a, e)
    assert phases.trainable_variables == generator.trainable_variables


def test_a_pair_that_is_not_adjacent_is_refused(integer_angle_generator):
    with pytest.raises(ValueError, match="must directly follow up1"):
        PolyphaseGenerator(integer_angle_generator, "up1", "conv2")
