"""Two-stage int8: on a small convolution stack with a wide dynamic range, the residual stages
bring the int8 output an order of magnitude closer to float32, and every convolution still runs
in int8."""
import numpy as np
import pytest

from benchmark import precision as prec
from benchmark import residual_quantisation as rq
from reference_model.errors import InputError

SHAPE = (4, 6, 8, 8, 8)  # N, C, D, H, W (OpenVINO's layout)


def float_model():
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    data = ops.parameter(SHAPE, np.float32, name="x")
    x = ops.transpose(data, ops.constant(np.array([0, 1, 2, 4, 3])))  # a layout op before the conv
    for index, channels in enumerate((12, 1)):
        weights = rng.normal(size=(channels, int(x.get_output_partial_shape(0)[1].get_length()), 3, 3, 3))
        x = ops.convolution(x, ops.constant(weights.astype(np.float32)), [1, 1, 1], [1, 1, 1], [1, 1, 1],
                            [1, 1, 1])
        x.set_friendly_name(f"conv{index}")
        x = ops.relu(x)
    return ov.Model([x], [data], "stack")


def inputs(seed: int) -> np.ndarray:
    """Four decades of scale across the batch, as in a shower's cells."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=SHAPE) * 10.0 ** rng.uniform(-3, 1, (SHAPE[0], 1, 1, 1, 1))).astype(np.float32)


def quantised(model):
    import nncf

    return nncf.quantize(model, nncf.Dataset([inputs(s) for s in range(8)]), subset_size=8)


def run(model, x):
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled, compiled.create_infer_request().infer({0: x})[0]


def test_residual_stages_bring_int8_close_to_float32_and_stay_int8():
    original, x = float_model(), inputs(99)
    _, exact = run(original, x)
    _, one_stage = run(quantised(original), x)
    two = quantised(original)
    names = rq.convolutions(original)
    assert names == ["conv0", "conv1"]
    rq.add_residual_stages(two, original, activations=names, weights=names[-1:])
    compiled, two_stage = run(two, x)
    assert prec.float_convolutions(compiled) == []  # the added convolutions are int8 too
    error_one, error_two = (np.abs(y - exact).mean() for y in (one_stage, two_stage))
    assert error_two < error_one / 10
    assert two.get_rt_info([rq.ACTIVATION_RT_INFO]).astype(str) == "conv0,conv1"
    assert two.get_rt_info([rq.WEIGHT_RT_INFO]).astype(str) == "conv1"


def test_a_convolution_that_is_not_quantised_is_refused():
    original = float_model()
    with pytest.raises(InputError, match="not int8-quantised"):
        rq.add_residual_stages(original, original, activations=["conv0"], weights=[])
    with pytest.raises(InputError, match="no convolution named conv7"):
        rq.add_residual_stages(quantised(original), original, activations=["conv7"], weights=[])
