"""Throughput of the data side: the stand-in simulator, and the input pipeline against training.

The pipeline must never be the bottleneck: it has to deliver at least 10x the samples per
second that the reference training step consumes on the same machine. Both rates are measured
in the same run and the ratio is recorded in the benchmark's extra_info; the floor asserted
below is that requirement, nothing tighter, because absolute rates depend on the machine.

Run: make bench, or .venv/bin/pytest tests/performance/test_bench_data.py --benchmark-enable -s
"""
from __future__ import annotations

import time

import pytest

from reference_model import data, pipeline, simulator
from reference_model.showers import ANGLE, FIXED

FULL_FIXED_SET = 200_000
REQUIRED_RATIO = 10.0
TRAIN_STEPS_TIMED = 3


@pytest.mark.parametrize("geometry, n_events", [(FIXED, 300), (ANGLE, 60)])
def test_bench_simulator_writes_files(benchmark, tmp_path_factory, geometry, n_events):
    """Events per second of `write_dataset`, simulation plus compressed HDF5 writing."""
    def write():
        out = tmp_path_factory.mktemp(f"synth_{geometry}")
        return simulator.write_dataset(out, n_events, geometry, seed=1, events_per_file=150,
                                       progress=False)

    benchmark.pedantic(write, rounds=2, iterations=1, warmup_rounds=1)
    rate = n_events / benchmark.stats.stats.mean
    benchmark.extra_info["events_per_second"] = round(rate, 1)
    if geometry == FIXED:
        benchmark.extra_info["minutes_for_200k_fixed_events"] = round(FULL_FIXED_SET / rate / 60, 1)
    print(f"\n{geometry}: {rate:,.1f} events/s written")


def _training_samples_per_second(files, benchmark_name: str, batch_size: int) -> float:
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    gan = ReferenceGAN(get_spec(benchmark_name), seed=0)
    batches = iter(pipeline.make_dataset(files, benchmark_name, batch_size, seed=0))
    float(gan.train_step(next(batches))["d_loss"])  # trace and compile outside the timing
    ready = [next(batches) for _ in range(TRAIN_STEPS_TIMED)]
    start = time.perf_counter()
    for batch in ready:
        losses = gan.train_step(batch)
    float(losses["d_loss"])
    return TRAIN_STEPS_TIMED * batch_size / (time.perf_counter() - start)


@pytest.mark.parametrize("geometry, benchmark_name, n_events, batch_size", [
    (FIXED, "3dgan", 1000, 8),
    (ANGLE, "3dgan-angle", 200, 4),
])
def test_bench_pipeline_outpaces_training(benchmark, tmp_path_factory, geometry, benchmark_name,
                                          n_events, batch_size):
    """Samples per second of one streamed epoch, over the training step's samples per second."""
    out = tmp_path_factory.mktemp(f"pipeline_{geometry}")
    files = simulator.write_dataset(out, n_events, geometry, seed=2, events_per_file=n_events // 4,
                                    progress=False)
    files = data.list_files(out)
    samples = pipeline.steps_per_epoch(files, batch_size) * batch_size

    def one_epoch():
        for _ in pipeline.make_dataset(files, benchmark_name, batch_size, seed=1):
            pass

    benchmark.pedantic(one_epoch, rounds=3, iterations=1, warmup_rounds=1)
    pipeline_rate = samples / benchmark.stats.stats.mean
    training_rate = _training_samples_per_second(files, benchmark_name, batch_size)
    ratio = pipeline_rate / training_rate
    benchmark.extra_info.update(pipeline_samples_per_second=round(pipeline_rate, 1),
                                training_samples_per_second=round(training_rate, 2),
                                ratio=round(ratio, 1))
    print(f"\n{benchmark_name}: pipeline {pipeline_rate:,.1f} samples/s, training step "
          f"{training_rate:,.2f} samples/s, ratio {ratio:,.1f}x")
    assert ratio >= REQUIRED_RATIO
