"""Hot paths of the model: the generator's forward pass and one reference training step.

Timed with pytest-benchmark (compiled once outside the timing, several rounds), so CI can save
a baseline and compare against it with a noise-aware threshold (docs/regression.md). Nothing
here asserts a time; a slowdown is judged by the comparison, against the same machine's baseline.

Run: make bench, or .venv/bin/pytest tests/performance/test_bench_model.py --benchmark-enable
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from reference_model.specs import get_spec
from reference_model.training import ReferenceGAN, synthetic_batch

GENERATOR_BATCH = {"3dgan": 16, "3dgan-angle": 4}
TRAINING_BATCH = {"3dgan": 8, "3dgan-angle": 2}


@pytest.mark.parametrize("benchmark_name", ["3dgan", "3dgan-angle"])
def test_bench_generator_forward(benchmark, benchmark_name):
    """Showers per second of the frozen generator's forward pass (float32, compiled)."""
    spec = get_spec(benchmark_name)
    generator = spec.build_generator()
    batch_size = GENERATOR_BATCH[benchmark_name]
    rng = np.random.default_rng(0)
    theta = rng.uniform(1.0, 2.1, batch_size)
    latent = tf.constant(spec.generator_input(rng.uniform(10, 500, batch_size), theta, rng))
    forward = tf.function(lambda x: generator(x, training=False))
    forward(latent)  # trace outside the timing

    images = benchmark.pedantic(lambda: forward(latent).numpy(), rounds=5, iterations=1, warmup_rounds=1)
    assert images.shape[0] == batch_size and np.isfinite(images).all()
    benchmark.extra_info["showers_per_second"] = round(batch_size / benchmark.stats.stats.mean, 1)


@pytest.fixture
def precision_policy(request):
    """The Keras precision policy for one test, restored afterwards."""
    import keras

    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy(before)


@pytest.mark.parametrize("precision_policy", ["float32", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("benchmark_name", ["3dgan", "3dgan-angle"])
def test_bench_training_step(benchmark, benchmark_name, precision_policy):
    """Samples per second of one reference step (2 discriminator + 2 generator updates), in the
    campaign's precision (mixed_bfloat16) and in float32; their ratio comes from one run."""
    gan = ReferenceGAN(get_spec(benchmark_name), seed=0)
    batch = synthetic_batch(benchmark_name, TRAINING_BATCH[benchmark_name])
    float(gan.train_step(batch)["d_loss"])  # trace and compile outside the timing

    losses = benchmark.pedantic(lambda: {k: float(v) for k, v in gan.train_step(batch).items()},
                                rounds=3, iterations=1, warmup_rounds=0)
    assert all(np.isfinite(v) for v in losses.values())
    benchmark.extra_info["samples_per_second"] = round(TRAINING_BATCH[benchmark_name] / benchmark.stats.stats.mean, 2)


@pytest.mark.parametrize("precision_policy", ["mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("generator_form", ["phases", "as built"])
def test_bench_angle_step_generator_form(benchmark, generator_form, precision_policy):
    """The angle campaign's step (mixed_bfloat16, batch 8) with up1 -> conv1 in phases, as it
    trains, and with the generator as built: the speed-up is their ratio in one run
    (docs/training-performance.md)."""
    gan = ReferenceGAN(get_spec("3dgan-angle"), seed=0)
    if generator_form == "as built":
        gan.generate = gan.generator
    batch = synthetic_batch("3dgan-angle", 8)
    float(gan.train_step(batch)["d_loss"])  # trace and compile outside the timing

    losses = benchmark.pedantic(lambda: {k: float(v) for k, v in gan.train_step(batch).items()},
                                rounds=3, iterations=1, warmup_rounds=0)
    assert all(np.isfinite(v) for v in losses.values())
    benchmark.extra_info["samples_per_second"] = round(8 / benchmark.stats.stats.mean, 2)
