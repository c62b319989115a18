"""Do this CPU's low-precision kernels compute the reference layers correctly?

A benchmark number is only honest if the arithmetic behind it is right. oneDNN picks a kernel
per layer shape and ISA, and a wrong kernel is silent: on an AMX Xeon (TensorFlow 2.21,
`brg_conv_fwd:avx10_1_512_amx`) the bfloat16 forward convolution of the fixed generator's conv1
(6x6x8 kernel, 8 -> 64 channels, "same" padding on a 7x7x8 grid) returns values off by more
than 100% while every other layer agrees with float32 to bf16 rounding (docs/numerics.md). So
before a run uses a low-precision policy, each of its convolution and dense layers is run on
random data in that layer's compute dtype and in float32, forward and backward, on the process
(node) that will train or infer, and the run stops if one disagrees by more than rounding can.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference_model.errors import InputError

# Mean |low - float32| / mean |float32|. bf16 rounding gives about 0.003 on these shapes; a wrong
# kernel gives order 1. The limit sits far from both.
RELATIVE_ERROR_LIMIT = 0.05
PROBED_LAYERS = ("Conv3D", "Dense")


@dataclass(frozen=True)
class KernelCheck:
    """One layer's low-precision forward and gradients against float32 on the same data."""

    model: str
    layer: str
    dtype: str
    forward: float
    input_gradient: float
    weight_gradient: float

    @property
    def worst(self) -> float:
        return max(self.forward, self.input_gradient, self.weight_gradient)

    @property
    def passed(self) -> bool:
        return self.worst <= RELATIVE_ERROR_LIMIT


def _relative(reference: np.ndarray, candidate: np.ndarray) -> float:
    scale = float(np.abs(reference).mean())
    return float(np.abs(reference - candidate).mean()) / scale if scale > 0 else 0.0


def _layer_op(layer):
    """The layer's linear operation as a function of (inputs, kernel), without bias/activation."""
    import tensorflow as tf

    if type(layer).__name__ == "Dense":
        return lambda x, w: tf.matmul(x, w)
    strides = [1, *layer.strides, 1]
    padding = layer.padding.upper()
    return lambda x, w: tf.nn.conv3d(x, w, strides, padding)


def check_layer(model_name: str, layer, batch_size: int, seed: int = 0) -> KernelCheck:
    """Run `layer`'s operation at `batch_size` in its compute dtype and in float32."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    op = _layer_op(layer)
    x = tf.constant(rng.standard_normal((batch_size, *layer.input.shape[1:]), dtype=np.float32))
    fan_in = int(np.prod(layer.kernel.shape[:-1]))
    w = tf.constant((rng.standard_normal(tuple(layer.kernel.shape)) / np.sqrt(fan_in)).astype(np.float32))
    upstream = tf.constant(rng.standard_normal((batch_size, *layer.output.shape[1:]), dtype=np.float32))
    results = {}
    for dtype in (tf.float32, tf.as_dtype(layer.compute_dtype)):
        xd, wd = tf.cast(x, dtype), tf.cast(w, dtype)
        with tf.GradientTape() as tape:
            tape.watch([xd, wd])
            y = tf.cast(op(xd, wd), tf.float32)
            loss = tf.reduce_sum(y * upstream)
        dx, dw = tape.gradient(loss, [xd, wd])
        results[dtype.name] = [tf.cast(t, tf.float32).numpy() for t in (y, dx, dw)]
    reference, candidate = results["float32"], results[layer.compute_dtype]
    errors = [_relative(r, c) for r, c in zip(reference, candidate)]
    return KernelCheck(model_name, layer.name, layer.compute_dtype, *errors)


def low_precision_layers(model) -> list:
    """The model's convolution and dense layers that compute in a dtype other than float32."""
    return [layer for layer in model.layers
            if type(layer).__name__ in PROBED_LAYERS and layer.compute_dtype != "float32"]


def check_models(models, batch_size: int) -> list[KernelCheck]:
    """Every low-precision layer of `models` (Keras models built under the run's policy)."""
    return [check_layer(model.name, layer, batch_size) for model in models
            for layer in low_precision_layers(model)]


def require_correct_kernels(models, batch_size: int) -> list[KernelCheck]:
    """Stop with one line when a low-precision kernel disagrees with float32 beyond rounding."""
    checks = check_models(models, batch_size)
    wrong = [c for c in checks if not c.passed]
    if wrong:
        names = ", ".join(f"{c.model}/{c.layer} ({c.dtype}, error {c.worst:.3g})" for c in wrong)
        raise InputError(
            f"this CPU's low-precision kernels compute {names} wrongly (limit {RELATIVE_ERROR_LIMIT} "
            "against float32): run in float32, or restrict oneDNN's ISA (for bf16 on AMX: "
            "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16) and check again")
    return checks
