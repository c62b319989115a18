"""The stand-in simulator: real layouts, determinism, and the data characteristics of the slides."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from harness.cli import main as harness_main
from reference_model import physics, simulator, transforms
from reference_model.errors import InputError
from reference_model.showers import ANGLE, FIXED

PHYSICS_FIXED_EVENTS = 2000
PHYSICS_ANGLE_EVENTS = 400


@pytest.fixture(scope="module")
def fixed_showers():
    return simulator.simulate(PHYSICS_FIXED_EVENTS, FIXED, seed=101)


@pytest.fixture(scope="module")
def angle_showers():
    return simulator.simulate(PHYSICS_ANGLE_EVENTS, ANGLE, seed=102)


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_same_events_and_a_prefix_stable_stream():
    a = simulator.simulate(70, FIXED, seed=5)
    b = simulator.simulate(120, FIXED, seed=5)
    np.testing.assert_array_equal(a.ecal_gev, b.ecal_gev[:70])
    np.testing.assert_array_equal(a.energy_gev, b.energy_gev[:70])
    c = simulator.simulate(70, FIXED, seed=6)
    assert not np.array_equal(a.energy_gev, c.energy_gev)


def _file_events(paths, key="ECAL"):
    with_all = []
    for p in paths:
        with h5py.File(p, "r") as f:
            with_all.append(f[key][:])
    return np.concatenate(with_all)


def test_files_are_identical_for_a_seed_whatever_the_file_size(tmp_path):
    small = simulator.write_dataset(tmp_path / "a", 90, ANGLE, seed=3, events_per_file=20, progress=False)
    large = simulator.write_dataset(tmp_path / "b", 90, ANGLE, seed=3, events_per_file=45, progress=False)
    assert [len(small), len(large)] == [5, 2]
    for key in ("ECAL", "energy", "theta", "sum"):
        np.testing.assert_array_equal(_file_events(small, key), _file_events(large, key))
    expected = simulator.simulate(90, ANGLE, seed=3)
    np.testing.assert_array_equal(_file_events(small, "theta"), expected.theta_rad)


def test_sorted_file_order_is_generation_order(tmp_path):
    paths = simulator.write_dataset(tmp_path, 24, FIXED, seed=1, events_per_file=2, progress=False)
    assert len(paths) == 12
    assert sorted(tmp_path.glob("*.h5")) == paths
    np.testing.assert_array_equal(_file_events(paths, "target")[:, 1],
                                  simulator.simulate(24, FIXED, seed=1).energy_gev)


# -- layouts -----------------------------------------------------------------------------------
def test_fixed_layout_is_the_real_one(tmp_path):
    (path,) = simulator.write_dataset(tmp_path, 30, FIXED, seed=2, progress=False)
    assert path.name.startswith("EleEscan_") and path.suffix == ".h5"
    with h5py.File(path, "r") as f:
        ecal, target = f["ECAL"], f["target"]
        assert ecal.shape == (30, 25, 25, 25) and ecal.dtype == np.float32
        assert ecal.compression == "gzip" and ecal.chunks is not None
        assert target.shape == (30, 2)
        energy = target[:, 1]
        sums = ecal[:].sum(axis=(1, 2, 3))
    assert np.all((energy >= 10) & (energy <= 500))
    # ECAL in GeV: the window sum is the sampling fraction (about 2%) of the primary energy.
    np.testing.assert_allclose(sums / energy, transforms.sampling_fraction_fit(energy), rtol=0.2)


def test_angle_layout_is_the_real_one(tmp_path):
    (path,) = simulator.write_dataset(tmp_path, 20, ANGLE, seed=2, progress=False)
    assert path.name.startswith("EleEscan_RandomAngle_")
    with h5py.File(path, "r") as f:
        assert {"ECAL", "energy", "theta", "eta", "sum"} <= set(f)
        ecal = f["ECAL"][:]
        energy, theta, eta, total = f["energy"][:], f["theta"][:], f["eta"][:], f["sum"][:]
        assert f["ECAL"].compression == "gzip" and f["ECAL"].chunks is not None
    assert ecal.shape == (20, 51, 51, 25) and ecal.dtype == np.float32
    assert np.all((np.degrees(theta) >= 60) & (np.degrees(theta) <= 120))
    np.testing.assert_allclose(eta, -np.log(np.tan(theta / 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(total, ecal.sum(axis=(1, 2, 3)), rtol=1e-5)
    # GeV x 50: the raw sum is about the primary energy (sampling fraction ~2% times 50).
    np.testing.assert_allclose(total / 50 / energy, transforms.sampling_fraction_fit(energy), rtol=0.25)


def test_energy_range_is_respected():
    showers = simulator.simulate(60, ANGLE, seed=4, energy_range=(100, 200))
    assert showers.energy_gev.min() >= 100 and showers.energy_gev.max() <= 200


@pytest.mark.parametrize("kwargs, problem", [
    (dict(geometry="cube"), "--geometry"),
    (dict(n_events=0), "--events"),
    (dict(seed=-1), "--seed"),
    (dict(energy_range=(0.0, 5.0)), "--energy-range"),
    (dict(energy_range=(300.0, 200.0)), "--energy-range"),
])
def test_bad_arguments_are_input_errors(kwargs, problem):
    args = dict(n_events=5, geometry=FIXED, seed=0) | kwargs
    with pytest.raises(InputError, match=problem):
        simulator.simulate(**args)


def test_write_refuses_a_directory_with_data(tmp_path):
    simulator.write_dataset(tmp_path, 3, FIXED, progress=False)
    with pytest.raises(InputError, match="already holds"):
        simulator.write_dataset(tmp_path, 3, FIXED, progress=False)


def test_cli_synth_writes_files_and_reports_rate(tmp_path, capsys):
    rc = harness_main(["data", "synth", "--out", str(tmp_path), "--events", "12",
                       "--events-per-file", "5", "--geometry", "angle", "--seed", "3", "--quiet"])
    assert rc == 0
    assert len(list(tmp_path.glob("EleEscan_RandomAngle_*.h5"))) == 3
    assert "events/s" in capsys.readouterr().out
    assert harness_main(["data", "synth", "--out", str(tmp_path / "x"), "--events", "3",
                         "--energy-range", "5", "2"]) == 2


# -- the data characteristics of the slides and the reference ----------------------------------
def test_about_a_fifth_of_cells_carry_energy(fixed_showers):
    occupancy = float((fixed_showers.ecal_gev > 0).mean())
    assert 0.15 <= occupancy <= 0.25, occupancy


def test_cell_energies_span_more_than_seven_decades(fixed_showers):
    cells = fixed_showers.ecal_gev[fixed_showers.ecal_gev > 0]
    assert np.log10(cells.max() / cells.min()) > 7
    # Not a few outliers: the central 99.8% of occupied cells already spans four decades.
    lo, hi = np.percentile(cells, [0.1, 99.9])
    assert np.log10(hi / lo) > 4


def test_sampling_fraction_follows_the_fit_in_every_50_gev_bin(fixed_showers):
    sf = physics.sampling_fraction(fixed_showers)
    energy = fixed_showers.energy_gev
    for low in range(0, 500, 50):
        mask = (energy >= low) & (energy < low + 50)
        assert mask.sum() > 50
        fit = transforms.sampling_fraction_fit(energy[mask]).mean()
        assert abs(sf[mask].mean() / fit - 1) < 0.02, (low, sf[mask].mean(), fit)


def test_shower_maximum_deepens_with_log_energy(fixed_showers):
    longitudinal = fixed_showers.ecal_gev.sum(axis=(1, 2))
    energy = fixed_showers.energy_gev
    edges = np.geomspace(10, 500, 6)
    log_e, depth = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mean_profile = longitudinal[(energy >= lo) & (energy < hi)].mean(axis=0)
        log_e.append(np.log(np.sqrt(lo * hi)))
        depth.append((mean_profile * (np.arange(25) + 0.5)).sum() / mean_profile.sum())
    assert np.all(np.diff(depth) > 0), depth
    slope, _ = np.polyfit(log_e, depth, 1)
    assert slope > 0.3 and np.corrcoef(log_e, depth)[0, 1] > 0.98, (slope, depth)


def test_window_is_centred_on_the_barycentre(fixed_showers):
    x_profile = fixed_showers.ecal_gev.sum(axis=(2, 3))
    x_bary = (x_profile * (np.arange(25) + 0.5)).sum(1) / x_profile.sum(1)
    assert np.all(np.abs(x_bary - 12.5) < 1.0)


def test_measured_angle_tracks_the_true_angle(angle_showers):
    measured = physics.measured_angle(angle_showers.ecal_gev)
    true = angle_showers.theta_rad
    assert np.corrcoef(measured, true)[0, 1] > 0.95
    degrees = np.degrees(true)
    means = [np.degrees(measured[(degrees >= lo) & (degrees < lo + 10)]).mean() for lo in range(60, 120, 10)]
    assert np.all(np.diff(means) > 0), means
    assert np.allclose(means, np.arange(65, 120, 10), atol=8), means


def test_angle_sampling_fraction_is_the_fit_near_normal_incidence(angle_showers):
    normal = np.abs(np.degrees(angle_showers.theta_rad) - 90) < 10
    energy = angle_showers.energy_gev[normal]
    sf = physics.sampling_fraction(angle_showers)[normal]
    assert abs(sf.mean() / transforms.sampling_fraction_fit(energy).mean() - 1) < 0.03
