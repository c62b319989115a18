"""The low-precision kernel check: it passes the reference models as built, and it catches a wrong kernel."""
import keras
import pytest
import tensorflow as tf

from reference_model import numerics
from reference_model.errors import InputError
from reference_model.specs import get_spec


@pytest.fixture
def mixed_bfloat16():
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy(before)


def test_generator_conv1_computes_in_float32_under_mixed_precision(mixed_bfloat16):
    for benchmark in ("3dgan", "3dgan-angle"):
        generator = get_spec(benchmark).build_generator()
        assert generator.get_layer("conv1").compute_dtype == "float32"
        assert generator.get_layer("conv2").compute_dtype == "bfloat16"


def test_fixed_models_pass_on_this_cpu(mixed_bfloat16):
    """On an AMX CPU this fails if conv1 is left to oneDNN's bf16 kernel (error about 1.1)."""
    spec = get_spec("3dgan")
    checks = numerics.require_correct_kernels([spec.build_generator(), spec.build_discriminator()], 8)
    assert len(checks) == 8  # dense + conv2-4 of the generator, conv1-4 of the discriminator
    assert all(c.worst < numerics.RELATIVE_ERROR_LIMIT for c in checks)
    assert all(c.forward > 0 for c in checks)  # bf16 rounding is visible: the two paths really differ


def test_float32_models_have_nothing_to_check():
    spec = get_spec("3dgan")
    assert numerics.check_models([spec.build_generator()], 8) == []


def test_a_wrong_kernel_stops_the_run(mixed_bfloat16, monkeypatch):
    real = numerics._layer_op

    def off_by_half_in_bf16(layer):
        op = real(layer)
        return lambda x, w: op(x, w) * (1.5 if x.dtype == tf.bfloat16 else 1.0)

    monkeypatch.setattr(numerics, "_layer_op", off_by_half_in_bf16)
    generator = get_spec("3dgan").build_generator()
    with pytest.raises(InputError, match=r"generator_3dgan/conv2 \(bfloat16, error 0\.5"):
        numerics.require_correct_kernels([generator], 4)
