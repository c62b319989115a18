"""The machine's own compute roofline, and model-FLOPs utilisation (MFU) against it.

A throughput figure alone does not say whether a system is used well. MFU does: the model's
FLOPs per second divided by what this machine's dense matmul reaches in the same precision,
measured here with TensorFlow (oneDNN), warm-up excluded, best of a few repeats (a peak, so a
noisy neighbour can only lower it, never inflate the utilisation of the model).

FLOP convention (the one `reference_model.fingerprint.flops_per_sample` uses): 2 FLOPs per
multiply-accumulate of the Dense and Conv3D layers over their full kernels; element-wise layers,
padding and up-sampling count nothing. Zero-padding taps are counted, as every framework's
"model FLOPs" does, even where a library skips them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from benchmark.vocabulary import BFLOAT16, FLOAT32
from reference_model.specs import ModelSpec

ROOFLINE_PRECISIONS = (FLOAT32, BFLOAT16)
DEFAULT_MATRIX_SIZE = 4096
GENERATOR_STEPS_PER_BATCH = 2  # the reference trains the combined model twice per batch


@dataclass(frozen=True)
class Roofline:
    """The best dense-matmul rate measured in one precision."""

    precision: str
    gflops: float  # GFLOP/s, best of `repeats` timed repeats
    median_gflops: float
    matrix_size: int
    repeats: int
    threads: int  # TensorFlow intra-op threads the measurement used (0: TF's default, all cores)

    def to_dict(self) -> dict:
        return asdict(self)


def measure_matmul(precision: str, size: int = DEFAULT_MATRIX_SIZE, repeats: int = 5,
                   calls_per_repeat: int = 3, warmup_calls: int = 2) -> Roofline:
    """Time `size x size` matmuls in `precision` through a compiled tf.function.

    Each repeat times `calls_per_repeat` back-to-back calls and waits for the last result, so
    dispatch overhead is amortised; the warm-up calls (graph tracing, oneDNN primitive
    creation, weight reorders) are not timed.
    """
    import tensorflow as tf

    if precision not in ROOFLINE_PRECISIONS:
        raise ValueError(f"no matmul roofline for {precision!r}; choose one of {ROOFLINE_PRECISIONS}")
    dtype = tf.as_dtype(precision)
    a = tf.cast(tf.random.stateless_normal((size, size), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_normal((size, size), seed=(3, 4)), dtype)
    matmul = tf.function(tf.linalg.matmul)
    for _ in range(warmup_calls):
        matmul(a, b).numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls_per_repeat):
            product = matmul(a, b)
        product.numpy()
        seconds = (time.perf_counter() - start) / calls_per_repeat
        rates.append(2.0 * size ** 3 / seconds / 1e9)
    rates.sort()
    return Roofline(precision=precision, gflops=rates[-1], median_gflops=rates[len(rates) // 2],
                    matrix_size=size, repeats=repeats,
                    threads=tf.config.threading.get_intra_op_parallelism_threads())


def measure_rooflines(precisions=ROOFLINE_PRECISIONS, size: int = DEFAULT_MATRIX_SIZE,
                      repeats: int = 5) -> dict[str, Roofline]:
    return {p: measure_matmul(p, size=size, repeats=repeats) for p in precisions}


def model_flops_utilisation(flops_per_sample: float, samples_per_second: float,
                            peak_gflops: float) -> float:
    """Achieved model FLOP/s as a fraction of the measured peak (1.0 = the roofline)."""
    if peak_gflops <= 0:
        raise ValueError(f"peak must be positive, got {peak_gflops}")
    return flops_per_sample * samples_per_second / (peak_gflops * 1e9)


def inference_flops_per_sample(spec: ModelSpec) -> int:
    """Forward FLOPs of the generator for one shower."""
    from reference_model.fingerprint import flops_per_sample

    return flops_per_sample(spec.build_generator())


def training_flops_per_sample(spec: ModelSpec) -> int:
    """Model FLOPs of one reference training step, per sample of the batch, pass by pass.

    Each Conv3D/Dense layer costs F (its forward FLOPs) per forward pass, F for its weight
    gradient when it is trained, and F for its input gradient when a gradient must flow past it
    (not into the data or the latent vector). The reference step (3dgan-reference.md section 3):
      * G forward to make the fake batch;
      * D trained on the real batch, then on the fake batch: forward, weight and input
        gradients (no input gradient into the images);
      * twice, the combined model with D frozen: G forward, weight and input gradients (none
        into the latent), D forward and input gradients only (its weights are not trained).
    About 7 F_G + 10 F_D; frozen D costs a forward and an input-gradient pass, not 3 forwards.
    """
    from reference_model.fingerprint import layer_flops

    g, d = layer_flops(spec.build_generator()), layer_flops(spec.build_discriminator())

    def passes(flops: list[int], weights: bool, input_gradient_into_first: bool) -> int:
        input_gradients = sum(flops) if input_gradient_into_first else sum(flops[1:])
        return sum(flops) + (sum(flops) if weights else 0) + input_gradients

    d_step = passes(d, weights=True, input_gradient_into_first=False)
    g_step = passes(g, weights=True, input_gradient_into_first=False) + passes(
        d, weights=False, input_gradient_into_first=True)
    return sum(g) + 2 * d_step + GENERATOR_STEPS_PER_BATCH * g_step
