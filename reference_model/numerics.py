"""Do this CPU's low-precision kernels compute the reference layers correctly?

A benchmark number is only honest if the arithmetic behind it is right, and low precision has
been silently wrong here twice: on an AMX Xeon (TensorFlow 2.21, `brg_conv_fwd:avx10_1_512_amx`)
the bfloat16 forward convolution of the fixed generator's conv1 returned values off by more than
100%, and Keras's bias add summed every convolution's bias gradient in bfloat16, which stalls at
256 x the addend (docs/numerics.md). So before a run uses a low-precision policy, every layer
with trainable parameters is run on random data as the run builds it (its class, configuration
and policy, BatchNorm in training mode) and as a float32 twin with the same weights, on the
process (node) that will train or infer; the forward pass, the input gradient and the gradient
of every trainable parameter (kernels, biases, BatchNorm scale and offset) are compared (for
inference, which takes no gradient, the forward pass), and the run stops if one disagrees by more
than rounding can.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from reference_model.errors import InputError

# Mean |low - float32| / mean |float32|. bf16 rounding gives about 0.003 on these shapes; a wrong
# kernel or a bf16-accumulated bias gradient gives order 1. The limit sits far from both.
RELATIVE_ERROR_LIMIT = 0.05


@dataclass(frozen=True)
class KernelCheck:
    """One layer's low-precision forward pass and gradients against float32 on the same data."""

    model: str
    layer: str
    dtype: str
    forward: float
    input_gradient: Optional[float] = None  # None: an inference check, forward only
    parameter_gradients: dict[str, float] = field(default_factory=dict)  # "kernel", "bias", "gamma", ...

    @property
    def errors(self) -> dict[str, float]:
        """Every compared quantity by name: forward, input_gradient, and d/d<parameter>."""
        gradients = {} if self.input_gradient is None else {"input_gradient": self.input_gradient}
        return {"forward": self.forward, **gradients,
                **{f"d/d{name}": error for name, error in self.parameter_gradients.items()}}

    @property
    def worst_quantity(self) -> str:
        return max(self.errors, key=self.errors.get)

    @property
    def worst(self) -> float:
        return max(self.errors.values())

    @property
    def passed(self) -> bool:
        return self.worst <= RELATIVE_ERROR_LIMIT


def _relative(reference: np.ndarray, candidate: np.ndarray) -> float:
    scale = float(np.abs(reference).mean())
    return float(np.abs(reference - candidate).mean()) / scale if scale > 0 else 0.0


def _twin(layer, dtype):
    """A fresh, built copy of `layer` (same class and configuration) computing under `dtype`."""
    config = {**layer.get_config(), "dtype": dtype}
    twin = type(layer).from_config(config)
    twin.build(layer.input.shape)
    return twin


def _random_weights(layer, rng: np.random.Generator) -> list[np.ndarray]:
    """Trainable weights drawn at the scale training sees (kernels 1/sqrt(fan-in), vectors near
    their initial value, so a scale stays positive); non-trainable ones (BatchNorm's moving
    statistics, unused in training mode) kept as they are."""
    trainable = {id(v) for v in layer.trainable_weights}
    weights = []
    for variable in layer.weights:
        value = np.asarray(variable.numpy(), dtype=np.float32)
        if id(variable) in trainable:
            shape = value.shape
            if len(shape) >= 2:
                value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
            else:
                value = value + 0.1 * rng.standard_normal(shape)
        weights.append(value.astype(np.float32))
    return weights


def _run(layer, x, upstream, gradients: bool = True) -> list[np.ndarray]:
    """Output, input gradient and each trainable parameter's gradient of sum(layer(x) * upstream);
    the output alone without `gradients`."""
    import tensorflow as tf

    x = tf.cast(x, layer.compute_dtype)
    if not gradients:
        return [np.asarray(tf.cast(layer(x, training=False), tf.float32))]
    variables = [v.value for v in layer.trainable_weights]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(layer(x, training=True), tf.float32)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x, *variables])
    return [np.asarray(tf.cast(t, tf.float32)) for t in (y, *grads)]


def check_layer(model_name: str, layer, batch_size: int, seed: int = 0, gradients: bool = True) -> KernelCheck:
    """Run `layer` at `batch_size` under its own policy and in float32, with the same weights:
    forward and every gradient (training), or the forward pass alone (`gradients=False`:
    inference takes no gradient, so a gradient kernel's fault cannot touch its numbers)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    low, reference = _twin(layer, layer.dtype_policy), _twin(layer, "float32")
    weights = _random_weights(reference, rng)
    low.set_weights(weights)
    reference.set_weights(weights)
    x = tf.constant(rng.standard_normal((batch_size, *layer.input.shape[1:]), dtype=np.float32))
    upstream = tf.constant(rng.standard_normal((batch_size, *layer.output.shape[1:]), dtype=np.float32))
    expected, got = _run(reference, x, upstream, gradients), _run(low, x, upstream, gradients)
    errors = [_relative(r, c) for r, c in zip(expected, got)]
    if not gradients:
        return KernelCheck(model_name, layer.name, layer.compute_dtype, errors[0])
    names = [v.name for v in reference.trainable_weights]
    return KernelCheck(model_name, layer.name, layer.compute_dtype, errors[0], errors[1],
                       dict(zip(names, errors[2:])))


def low_precision_layers(model) -> list:
    """The model's layers with trainable parameters that compute in a dtype other than float32."""
    return [layer for layer in model.layers
            if layer.trainable_weights and layer.compute_dtype != "float32"]


def check_models(models, batch_size: int, gradients: bool = True) -> list[KernelCheck]:
    """Every low-precision layer of `models` (Keras models built under the run's policy)."""
    return [check_layer(model.name, layer, batch_size, gradients=gradients) for model in models
            for layer in low_precision_layers(model)]


def wrong_layers(checks: list[KernelCheck]) -> str:
    """The layers that disagree with float32 and by how much, for one line ("" when none)."""
    return ", ".join(f"{c.model}/{c.layer} ({c.dtype}, {c.worst_quantity} error {c.worst:.3g})"
                     for c in checks if not c.passed)


def require_correct_kernels(models, batch_size: int, gradients: bool = True) -> list[KernelCheck]:
    """Stop with one line when a low-precision layer disagrees with float32 beyond rounding, in
    what the run computes: forward and gradients for training, the forward pass for inference."""
    checks = check_models(models, batch_size, gradients)
    names = wrong_layers(checks)
    if names:
        raise InputError(
            f"this CPU's low-precision kernels compute {names} wrongly (limit {RELATIVE_ERROR_LIMIT} "
            "against float32): run in float32, or restrict oneDNN's ISA (for bf16 on AMX: "
            "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16) and check again")
    return checks
