"""The stand-in samples the targets are calibrated and judged on fill every energy bin."""
from __future__ import annotations

import dataclasses

import numpy as np

from benchmark import quality
from benchmark.calibration import float32_interior, standin_sample
from reference_model.simulator import simulate


def test_a_draw_that_rounds_onto_a_bins_edge_stays_inside_it():
    # Seed 880902's 800 draws over (195, 205) include one that rounds to 205.0 as float32.
    edge_case = simulate(800, "fixed", seed=880902, energy_range=(195.0, 205.0)).energy_gev
    assert ((edge_case > 195) & (edge_case < 205)).sum() == 799
    inside = simulate(800, "fixed", seed=880902, energy_range=float32_interior(195.0, 205.0)).energy_gev
    assert ((inside > 195) & (inside < 205)).all()


def test_a_standin_sample_fills_every_bin_of_the_gate():
    thresholds = dataclasses.replace(quality.load_thresholds("3dgan"), events_per_bin=800)
    sample = standin_sample(thresholds, 8809)
    chosen = quality.select_evaluation_showers(sample, thresholds)
    assert len(chosen) == len(sample) == 800 * len(thresholds.energy_bins_gev)
    low, high = float32_interior(195.0, 205.0)
    assert 195.0 < np.float32(low) < np.float32(high) < 205.0
