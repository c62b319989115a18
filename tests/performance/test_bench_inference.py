"""The inference hot path: the generator's forward pass as `harness run --mode inference` runs it
(the polyphase rewrite, benchmark.inference_graph) in float32, bfloat16 and int8.

Timed with pytest-benchmark (traced once outside the timing), so a regression in any
precision shows against the same machine's saved baseline. The bf16/f32 speed ratio is measured
within one run (both timed back to back, same protocol) and recorded, not asserted: it is a
property of the machine (AVX-512 BF16 or AMX) as much as of the code.

Run: .venv/bin/pytest tests/performance/test_bench_inference.py --benchmark-enable
"""
from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from benchmark import precision as inference_precision
from reference_model.checkpoint import save_generator
from reference_model.specs import get_spec

BATCH = 32
ROUNDS = 5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Seeded random weights with non-zero biases, as a trained generator has: with the all-zero
    biases of a fresh model the runner cannot use the frozen graph (docs/numerics.md) and would
    time the slower traced one."""
    spec = get_spec("3dgan")
    keras.utils.set_random_seed(0)
    generator = spec.build_generator()
    rng = np.random.default_rng(0)
    for layer in generator.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.01, layer.bias.shape).astype(np.float32))
    path = tmp_path_factory.mktemp("bench") / "3dgan-generator.weights.h5"
    return save_generator(path, generator, spec)


def _runner(checkpoint, precision: str, workdir=None, rewrite: bool = True):
    if precision == inference_precision.INT8:
        prepared = inference_precision.prepare(precision, checkpoint, workdir)
        runner = inference_precision.load_runner(precision, prepared, get_spec("3dgan"))
    else:
        runner = inference_precision.TensorFlowRunner(checkpoint, precision, rewrite=rewrite)
    latent = inference_precision.calibration_latents(runner.spec, BATCH, seed=0)
    runner(latent)  # trace and create the oneDNN primitives outside the timing
    assert getattr(runner, "frozen", True), "the TensorFlow runner fell back to the traced graph"
    return runner, latent


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_bench_generator_forward(benchmark, checkpoint, precision, tmp_path):
    """Showers per second of one batch through the generator as the harness runs it."""
    runner, latent = _runner(checkpoint, precision, tmp_path)
    images = benchmark.pedantic(lambda: runner(latent), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert images.shape == (BATCH, 25, 25, 25, 1) and np.isfinite(images).all()
    benchmark.extra_info["showers_per_second"] = round(BATCH / benchmark.stats.stats.mean, 1)


def test_bench_bfloat16_over_float32(benchmark, checkpoint):
    """bfloat16 timed by pytest-benchmark; float32 timed right before with the same protocol."""
    f32, latent = _runner(checkpoint, "float32")
    bf16, _ = _runner(checkpoint, "bfloat16")
    f32(latent)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        f32(latent)
        times.append(time.perf_counter() - start)
    benchmark.pedantic(lambda: bf16(latent), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    ratio = float(np.mean(times)) / benchmark.stats.stats.mean
    benchmark.extra_info["float32_mean_s"] = round(float(np.mean(times)), 5)
    benchmark.extra_info["bfloat16_speedup_over_float32"] = round(ratio, 3)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bench_without_rewrite(benchmark, checkpoint, precision):
    """The reference generator's own graph, without the polyphase rewrite: what the rewrite is
    measured against."""
    runner, latent = _runner(checkpoint, precision, rewrite=False)
    benchmark.pedantic(lambda: runner(latent), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info["showers_per_second"] = round(BATCH / benchmark.stats.stats.mean, 1)


@pytest.mark.parametrize("variant", ["eager", "graph", "xla"])
def test_bench_forward_execution_variants(benchmark, checkpoint, variant):
    """Why float32 runs as a graph: eager Keras and XLA (`jit_compile=True`) against the traced
    graph (the runner's frozen graph is timed by test_bench_generator_forward)."""
    import tensorflow as tf

    runner = inference_precision.TensorFlowRunner(checkpoint, "float32")
    latent = tf.constant(inference_precision.calibration_latents(runner.spec, BATCH, seed=0))
    call = lambda x: runner.generator(x, training=False)  # noqa: E731
    forward = {"eager": call, "graph": tf.function(call), "xla": tf.function(call, jit_compile=True)}[variant]
    forward(latent)  # trace / compile outside the timing
    images = benchmark.pedantic(lambda: forward(latent).numpy(), rounds=3, iterations=1, warmup_rounds=1)
    assert images.shape == (BATCH, 25, 25, 25, 1)
    benchmark.extra_info["showers_per_second"] = round(BATCH / benchmark.stats.stats.mean, 1)
