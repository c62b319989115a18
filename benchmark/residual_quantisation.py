"""Two-stage int8: a convolution's input and weights each as int8 plus an int8 rounding residual.

Per-tensor int8 puts a quantisation step of about max/255 on a convolution's input. The
generator's cells span four decades, so on the last convolutions that step is ten times an
edge cell's energy, and the final ReLU keeps the positive half of the noise in every empty cell
(2.8x float32's shower energy on the campaign's generator; docs/inference-performance.md).

The fix keeps every convolution in int8: a convolution over x also runs, with the same int8
weights, over the rounding residual r = x - q(x), itself quantised to int8 with a step 1/254 of
q's. conv(q(x)) + conv(q(r)) carries about 16 bits of the activation for twice the int8 work of
that convolution. The residual is taken where NNCF quantised x and replayed through the layout
ops (transpose, reshape, slice, pad) between there and the convolution, which are linear.
Weights get the same treatment where asked: conv(q(x), q(w - q(w))) with a per-output-channel
scale of its own adds the bits per-channel int8 weights lose.

Measured with the paired gate against float32 (59 checks) on two campaign generators (20,000 and
70,000 samples): one stage everywhere fails 54 (20,000); two-stage activations on every
convolution fail 3; adding two-stage weights on the last convolution passes all 59 on the first
and fails 1 on the second (profiles 0.052 > 0.045); two-stage weights on every convolution pass
both (profiles 0.028 and 0.021). Fewer stages fail (docs/inference-performance.md).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from reference_model.errors import InputError

ACTIVATION_RT_INFO = "residual_activations"  # IR rt_info: convolutions with a residual input stage
WEIGHT_RT_INFO = "residual_weights"  # IR rt_info: convolutions with a residual weight stage
LAYOUT_OPS = ("Transpose", "Reshape", "StridedSlice", "Pad", "Squeeze", "Unsqueeze")


def convolutions(model) -> list[str]:
    """The friendly names of the model's convolutions, input to output."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "Convolution"]


def add_residual_stages(quantised, original, activations: Sequence[str], weights: Sequence[str]) -> None:
    """Give the named convolutions of an NNCF-quantised OpenVINO model a residual int8 stage on
    their input (`activations`) or their weights (`weights`, measured against the `original`
    float model's), in place; record both lists in the model's rt_info."""
    quantised_convs, original_convs = _by_name(quantised), _by_name(original)
    missing = [name for name in (*activations, *weights)
               if name not in quantised_convs or name not in original_convs]
    if missing:
        raise InputError(f"no convolution named {', '.join(missing)} in both the float and the "
                         "quantised model")
    stages = {name: [_weight_stage(quantised_convs[name], original_convs[name])]
              for name in weights}  # built first: each reads the convolution's own input
    for name in activations:
        stages.setdefault(name, []).append(_activation_stage(quantised_convs[name]))
    for name, outputs in stages.items():
        _add_to_output(quantised_convs[name], outputs)
    quantised.validate_nodes_and_infer_types()
    quantised.set_rt_info(",".join(activations), [ACTIVATION_RT_INFO])
    quantised.set_rt_info(",".join(weights), [WEIGHT_RT_INFO])


def _by_name(model) -> dict[str, Any]:
    return {op.get_friendly_name(): op for op in model.get_ops() if op.get_type_name() == "Convolution"}


def _convolution(conv, data, weights):
    """A convolution with `conv`'s geometry over other data and weights."""
    import openvino.opset13 as ops

    attrs = conv.get_attributes()
    return ops.convolution(data, weights, attrs["strides"], attrs["pads_begin"], attrs["pads_end"],
                           attrs["dilations"], attrs["auto_pad"])


def _add_to_output(conv, extra) -> None:
    """Make every consumer of `conv` read conv + sum(extra) instead."""
    import openvino.opset13 as ops

    consumers = list(conv.output(0).get_target_inputs())
    total = conv.output(0)
    for node in extra:
        total = ops.add(total, node.output(0)).output(0)
    for consumer in consumers:
        consumer.replace_source_output(total)


def _weight_stage(conv, original_conv):
    """conv(q(x), q(w - q(w))): NNCF's weights are int8 constant -> convert -> per-channel scale."""
    import openvino.opset13 as ops

    scale_node = conv.input_value(1).get_node()
    if scale_node.get_type_name() != "Multiply" or \
            scale_node.input_value(0).get_node().get_type_name() != "Convert":
        raise InputError(f"convolution {conv.get_friendly_name()}: weights are not NNCF's compressed "
                         "symmetric int8; quantise with NNCF's default (symmetric) weights first")
    integers = scale_node.input_value(0).get_node().input_value(0).get_node().get_data()
    scale = scale_node.input_value(1).get_node().get_data().astype(np.float64)
    source = original_conv.input_value(1).get_node()
    if source.get_type_name() != "Constant" or tuple(source.get_data().shape) != integers.shape:
        raise InputError(f"convolution {conv.get_friendly_name()}: the float model's weights are not "
                         "a constant of the quantised weights' shape")
    residual = source.get_data().astype(np.float64) - integers.astype(np.float64) * scale
    channels = residual.reshape(len(residual), -1)
    fine = np.maximum(np.abs(channels).max(axis=1), np.finfo(np.float32).tiny) / 127
    fine = fine.reshape(-1, *[1] * (residual.ndim - 1))
    stage = np.clip(np.round(residual / fine), -128, 127).astype(np.int8)
    weights = ops.multiply(ops.convert(ops.constant(stage), "f32"), ops.constant(fine.astype(np.float32)))
    return _convolution(conv, conv.input_value(0), weights)


def _activation_stage(conv):
    """conv(q(x - q(x)), q(w)): the input's rounding residual through the same int8 weights."""
    import openvino.opset13 as ops

    chain, quantiser = [], conv.input_value(0).get_node()
    while quantiser.get_type_name() in LAYOUT_OPS:
        chain.append(quantiser)
        quantiser = quantiser.input_value(0).get_node()
    if quantiser.get_type_name() != "FakeQuantize":
        raise InputError(f"convolution {conv.get_friendly_name()}: its input is not int8-quantised "
                         f"(found {quantiser.get_type_name()}); quantise with NNCF first")
    low, high = (quantiser.input_value(i).get_node().get_data() for i in (1, 2))
    levels = int(quantiser.get_attributes()["levels"])
    step = float(np.max((high - low) / (levels - 1)))
    fine = np.float32(step / (levels - 2))  # the residual spans one step: [-step/2, step/2]
    bound_low, bound_high = ops.constant(np.float32(-(levels // 2) * fine)), \
        ops.constant(np.float32((levels // 2 - 1) * fine))
    residual = ops.subtract(quantiser.input_value(0), quantiser.output(0))
    stage = ops.fake_quantize(residual, bound_low, bound_high, bound_low, bound_high, levels)
    for node in reversed(chain):
        stage = _replay(node, stage.output(0))
    return _convolution(conv, stage, conv.input_value(1))


def _replay(node, value) -> Any:
    """`node` (a layout op) applied to `value` instead of its own data input."""
    import openvino.opset13 as ops

    kind, attrs = node.get_type_name(), node.get_attributes()
    rest = [node.input_value(i) for i in range(1, node.get_input_size())]
    if kind == "Transpose":
        return ops.transpose(value, rest[0])
    if kind == "Reshape":
        return ops.reshape(value, rest[0], attrs["special_zero"])
    if kind == "Squeeze":
        return ops.squeeze(value, *rest)
    if kind == "Unsqueeze":
        return ops.unsqueeze(value, rest[0])
    if kind == "Pad":  # the residual pads with zeros whatever the data pads with
        return ops.pad(value, rest[0], rest[1], attrs["pad_mode"])
    return ops.strided_slice(value, rest[0], rest[1], rest[2], attrs["begin_mask"],
                             attrs["end_mask"], attrs["new_axis_mask"],
                             attrs["shrink_axis_mask"], attrs["ellipsis_mask"])

