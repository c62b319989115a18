"""The low-precision check: it passes the reference models as built, and it catches a wrong kernel
and Keras's bfloat16-accumulated bias gradient (the bug reference_model.conv fixes)."""
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from reference_model import conv, numerics
from reference_model.errors import InputError
from reference_model.specs import get_spec

CHECKPOINTS = Path(__file__).parents[2] / "reference_model" / "checkpoints"


@pytest.fixture
def mixed_bfloat16():
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy(before)


def _bias_gradient(layer) -> np.ndarray:
    """d sum(layer(ones)) / d bias on an (8, 13, 13, 13, 8) input: 8 x 13^3 = 17,576 exactly."""
    x = tf.ones((8, 13, 13, 13, 8))
    layer.build(x.shape)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(tf.cast(layer(x), tf.float32))
    return tape.gradient(total, layer.bias.value).numpy()


def test_keras_conv3d_loses_its_bias_gradient_in_bfloat16(mixed_bfloat16):
    """The TensorFlow behaviour the reference layer exists for: if this starts passing, Keras fixed it."""
    assert np.all(_bias_gradient(keras.layers.Conv3D(8, 3, padding="same")) == 256.0)


def test_reference_conv3d_sums_its_bias_gradient_in_float32(mixed_bfloat16):
    gradient = _bias_gradient(conv.Conv3D(8, 3, padding="same"))
    np.testing.assert_allclose(gradient, 17_576.0, rtol=2 ** -8)  # one bf16 rounding of the sum


def test_reference_conv3d_equals_keras_conv3d_in_float32():
    keras_conv, reference = keras.layers.Conv3D(4, 3, padding="same"), conv.Conv3D(4, 3, padding="same")
    x = tf.random.stateless_normal((2, 6, 6, 6, 3), seed=(1, 2))
    keras_conv.build(x.shape)
    reference.build(x.shape)
    reference.set_weights([w + 0.1 for w in keras_conv.get_weights()])
    keras_conv.set_weights(reference.get_weights())
    gradients = []
    for layer in (keras_conv, reference):
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(layer(x) ** 2)
        gradients.append([g.numpy() for g in tape.gradient(total, [v.value for v in layer.trainable_weights])])
    np.testing.assert_array_equal(keras_conv(x), reference(x))
    for expected, got in zip(*gradients):
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_generator_conv1_computes_in_float32_under_mixed_precision(mixed_bfloat16):
    for benchmark in ("3dgan", "3dgan-angle"):
        generator = get_spec(benchmark).build_generator()
        assert generator.get_layer("conv1").compute_dtype == "float32"
        assert generator.get_layer("conv2").compute_dtype == "bfloat16"


def test_fixed_models_pass_on_this_cpu_every_parameter_checked(mixed_bfloat16):
    """On an AMX CPU this fails if conv1 is left to oneDNN's bf16 kernel (error about 1.1), and on
    any CPU if a convolution adds its bias with Keras's own bf16 add (bias gradient error ~0.15)."""
    spec = get_spec("3dgan")
    generator, discriminator = spec.build_generator(), spec.build_discriminator()
    checks = numerics.require_correct_kernels([generator, discriminator], 8)
    # the generator's dense, bn1, conv2, bn2, conv3, conv4; the discriminator's conv1-4 and bn2-4
    assert [(c.model, c.layer) for c in checks] == [
        ("generator_3dgan", name) for name in ("dense", "bn1", "conv2", "bn2", "conv3", "conv4")] + [
        ("discriminator_3dgan", name) for name in ("conv1", "conv2", "bn2", "conv3", "bn3", "conv4", "bn4")]
    low_precision = [v for model in (generator, discriminator) for layer in numerics.low_precision_layers(model)
                     for v in layer.trainable_weights]
    assert sum(len(c.parameter_gradients) for c in checks) == len(low_precision)
    assert {"kernel", "bias", "gamma", "beta"} <= {name for c in checks for name in c.parameter_gradients}
    assert all(c.worst < numerics.RELATIVE_ERROR_LIMIT for c in checks)
    assert all(c.forward > 0 for c in checks)  # bf16 rounding is visible: the two paths really differ


def test_float32_models_have_nothing_to_check():
    spec = get_spec("3dgan")
    assert numerics.check_models([spec.build_generator()], 8) == []


def test_a_bfloat16_accumulated_bias_gradient_stops_the_run(mixed_bfloat16):
    image = keras.Input((13, 13, 13, 8))
    model = keras.Model(image, keras.layers.Conv3D(8, 3, padding="same", name="plain")(image), name="plain_keras")
    with pytest.raises(InputError, match=r"plain_keras/plain \(bfloat16, d/dbias error 0\.\d+"):
        numerics.require_correct_kernels([model], 8)


def test_inference_checks_the_forward_pass_it_computes(mixed_bfloat16):
    """Inference takes no gradient: Keras's bf16-summed bias gradient cannot touch its numbers, a
    wrong forward kernel can."""
    image = keras.Input((13, 13, 13, 8))
    model = keras.Model(image, keras.layers.Conv3D(8, 3, padding="same", name="plain")(image), name="plain_keras")
    [check] = numerics.require_correct_kernels([model], 8, gradients=False)
    assert set(check.errors) == {"forward"} and check.passed


def test_a_wrong_kernel_stops_the_run(mixed_bfloat16, monkeypatch):
    real = numerics._run

    def off_by_half_in_bf16(layer, *args):
        results = real(layer, *args)
        return [results[0] * 1.5, *results[1:]] if layer.compute_dtype == "bfloat16" else results

    monkeypatch.setattr(numerics, "_run", off_by_half_in_bf16)
    generator = get_spec("3dgan").build_generator()
    with pytest.raises(InputError, match=r"generator_3dgan/dense \(bfloat16, forward error 0\.5"):
        numerics.require_correct_kernels([generator], 4)


def test_the_shipped_checkpoint_loads_into_the_models_built_with_the_fixed_convolution():
    """Keras keys a weights file by class name: reference_model.conv.Conv3D keeps Keras's."""
    from reference_model.checkpoint import load_generator
    from reference_model.fingerprint import RECORDED_FINGERPRINTS, architecture_fingerprint

    spec, generator = load_generator(CHECKPOINTS / "3dgan-generator.weights.h5")  # hash and fingerprint checked
    assert type(generator.get_layer("conv2")) is conv.Conv3D
    assert architecture_fingerprint(generator) in RECORDED_FINGERPRINTS.read_text()
