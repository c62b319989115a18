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
    """Checked against a closed formula written apart from the pass-by-pass count: G forward for
    the fakes; D real and D fake trained (3 F_D each, less the input gradient of D's first layer);
    two combined steps with D frozen (3 F_G less G's first-layer input gradient, plus 2 F_D)."""
    from reference_model.fingerprint import layer_flops

    spec = get_spec(benchmark_name)
    generator, discriminator = spec.build_generator(), spec.build_discriminator()
    f_g, f_d = flops_per_sample(generator), flops_per_sample(discriminator)
    g_first, d_first = layer_flops(generator)[0], layer_flops(discriminator)[0]
    expected = f_g + 2 * (3 * f_d - d_first) + 2 * (3 * f_g - g_first + 2 * f_d)
    assert roofline.training_flops_per_sample(spec) == expected
    if benchmark_name == "3dgan":  # the count of the layers: about 19.3 GFLOP, not 22.4
        assert 19.0e9 < roofline.training_flops_per_sample(spec) < 19.5e9
