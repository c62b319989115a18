"""The measured roofline and the FLOP conventions MFU rests on."""
import pytest

from benchmark import roofline
from reference_model.fingerprint import flops_per_sample
from reference_model.specs import get_spec


def test_matmul_roofline_is_measured_in_each_precision():
    for precision in ("float32", "bfloat16"):
        roof = roofline.measure_matmul(precision, size=256, repeats=3, calls_per_repeat=2)
        assert roof.precision == precision and roof.matrix_size == 256 and roof.repeats == 3
        assert 0 < roof.median_gflops <= roof.gflops
        assert roof.to_dict()["gflops"] == roof.gflops


def test_unknown_roofline_precision_is_refused():
    with pytest.raises(ValueError, match="int8"):
        roofline.measure_matmul("int8", size=64)


def test_mfu_is_model_flops_over_measured_peak():
    # 0.5 GFLOP per shower at 1000 showers/s is 500 GFLOP/s: half of a 1000 GFLOP/s roofline
    assert roofline.model_flops_utilisation(0.5e9, 1000.0, 1000.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        roofline.model_flops_utilisation(1.0, 1.0, 0.0)


def test_inference_flops_are_the_generator_forward():
    spec = get_spec("3dgan")
    flops = roofline.inference_flops_per_sample(spec)
    assert flops == flops_per_sample(spec.build_generator())
    assert 0.50e9 < flops < 0.52e9  # the "about 0.51 GFLOP per shower"


@pytest.mark.parametrize("benchmark_name", ["3dgan", "3dgan-angle"])
def test_training_flops_count_one_reference_step(benchmark_name):
    """G forward for the fakes, D real + D fake trained, two combined G+D steps; fwd+bwd = 3 fwd."""
    spec = get_spec(benchmark_name)
    f_g = flops_per_sample(spec.build_generator())
    f_d = flops_per_sample(spec.build_discriminator())
    assert roofline.training_flops_per_sample(spec) == 7 * f_g + 12 * f_d
