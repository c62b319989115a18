"""Evaluating 10,000 showers must take well under a minute: the physics features and every gate
metric for 10,000 reference against 10,000 candidate fixed-geometry showers, timed with
pytest-benchmark (run `pytest tests/performance --benchmark-enable`)."""
import numpy as np
import pytest

from benchmark import quality as quality_gate
from reference_model.showers import Showers

N_SHOWERS = 10_000
BINS = ((45.0, 55.0), (95.0, 105.0), (195.0, 205.0), (295.0, 305.0), (395.0, 405.0))


def _sample(seed: int) -> Showers:
    """10,000 sparse fixed-geometry showers (20% occupancy, as the real data) in five energy bins.

    Built from random cells, not the simulator, to keep set-up cheap; the cost measured depends
    only on the array sizes.
    """
    rng = np.random.default_rng(seed)
    ecal = np.zeros((N_SHOWERS, 25, 25, 25), dtype=np.float32)
    for start in range(0, N_SHOWERS, 1000):
        block = ecal[start:start + 1000]
        occupied = rng.random(block.shape, dtype=np.float32) < 0.2
        block[occupied] = rng.exponential(2e-3, size=int(occupied.sum())).astype(np.float32)
    energy = np.concatenate([rng.uniform(lo, hi, N_SHOWERS // len(BINS)) for lo, hi in BINS])
    return Showers(ecal, energy.astype(np.float32))


@pytest.fixture(scope="module")
def samples():
    return _sample(1), _sample(2)


def test_evaluate_10000_showers(benchmark, samples):
    thresholds = quality_gate.Thresholds(
        benchmark="3dgan", name="bench", sha256="0" * 64, smoke=False, submittable=False, geometry="fixed",
        energy_bins_gev=BINS, events_per_bin=N_SHOWERS // len(BINS), evaluation_events=N_SHOWERS,
        histogram_bins=10, limits={quality_gate.OBJECTIVE_TOTAL: 1.0})
    reference, candidate = samples
    report = benchmark.pedantic(quality_gate.evaluate, args=(reference, candidate, thresholds), rounds=3, iterations=1)
    assert len(report.reference) == len(report.candidate) == N_SHOWERS
    assert np.isfinite(report.objective)
