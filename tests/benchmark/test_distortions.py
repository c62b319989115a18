"""What a target lets through: the noise-floor target passes an undistorted pair and fails a 5%
scale error, a one-layer shift and a halved depth fluctuation; an angle distortion keeps the
labels and moves the showers; a narrower depth keeps each bin's mean depth and the energy."""
import numpy as np
import pytest

from benchmark import quality
from benchmark.calibration import standin_sample
from benchmark.distortions import (Distortion, candidate_sample, deeper, distortions, failing_summary, lets_through,
                                   shifted_along_depth)
from harness.commands.distortions import parse_pairs
from reference_model.errors import InputError
from reference_model.physics import moments


def test_the_noise_floor_target_fails_scale_and_depth_errors():
    v1 = quality.load_thresholds("3dgan", version="3dgan-quality-v1")
    rows = lets_through(v1, [(7, 8)], [Distortion("none"), Distortion("scale", 1.05), Distortion("deeper", 1)])
    assert [row.passes for row in rows] == [1, 0, 0]
    assert "objective.sampling_fraction" in rows[1].failures[0]


def test_the_noise_floor_target_fails_half_the_depth_fluctuation():
    v1 = quality.load_thresholds("3dgan", version="3dgan-quality-v1")
    row, = lets_through(v1, [(7, 8)], [Distortion("depth-spread", 0.5)])
    assert row.passes == 0 and any(".moment_z1." in name for name in row.failures[0])
    assert all(row.values[0][name] > v1.limits[name] for name in row.failures[0])
    assert set(row.values[0]) >= set(v1.limits)


def test_the_values_table_shows_each_pairs_values_beside_each_targets_limit():
    from benchmark.distortions import Row
    from harness.commands.distortions import values_table

    v1 = quality.load_thresholds("3dgan", version="3dgan-quality-v1")
    v2 = quality.load_thresholds("3dgan", version="3dgan-quality-v2")
    rows = [Row(Distortion("depth-spread", 0.5), ((), ()), ({"separation.moment_z1.E95-105": 0.17, "x": 1.0},
                                                           {"separation.moment_z1.E95-105": 0.188, "x": 1.0}))]
    table = values_table("separation.moment_z1", rows, [v1, v2], "simple")
    assert "depth fluctuation x0.5" in table and "0.17 / 0.188" in table
    assert f"{v2.limits['separation.moment_z1.E95-105']:.3g}" in table and "x " not in table
    with pytest.raises(InputError, match="--show 'nothing'"):
        values_table("nothing", rows, [v1], "simple")


def test_a_narrower_depth_scales_each_bins_depth_spread_and_keeps_its_mean_and_energy():
    fixed = quality.load_thresholds("3dgan", version="3dgan-quality-v1")
    plain, narrow = standin_sample(fixed, 8), candidate_sample(fixed, 8, Distortion("depth-spread", 0.5))
    depth, narrowed = moments(plain)["z"][:, 0], moments(narrow)["z"][:, 0]
    n = fixed.events_per_bin
    for i in range(len(fixed.energy_bins_gev)):
        in_bin = slice(i * n, (i + 1) * n)
        assert narrowed[in_bin].std() == pytest.approx(0.5 * depth[in_bin].std(), rel=0.05)  # edge losses
        assert narrowed[in_bin].mean() == pytest.approx(depth[in_bin].mean(), abs=0.02)
    assert narrow.ecal_gev.sum() == pytest.approx(plain.ecal_gev.sum(), rel=1e-3)
    np.testing.assert_array_equal(narrow.energy_gev, plain.energy_gev)


def test_a_shift_along_depth_moves_the_first_moment_by_exactly_that_much():
    images = np.zeros((3, 2, 2, 25), np.float32)
    images[:, :, :, 8:14] = np.arange(1, 7, dtype=np.float32)
    moved = shifted_along_depth(images, np.array([1.0, 0.25, -2.5]))
    np.testing.assert_array_equal(moved[0], deeper(standin_like(images), 1).ecal_gev[0])
    np.testing.assert_allclose(moments(moved)["z"][:, 0] - moments(images)["z"][:, 0], [1.0, 0.25, -2.5], atol=1e-5)
    np.testing.assert_allclose(moved.sum(axis=(1, 2, 3)), images.sum(axis=(1, 2, 3)), rtol=1e-6)


def standin_like(images: np.ndarray):
    from reference_model.showers import Showers

    return Showers(images, np.full(len(images), 100.0, np.float32))


def test_an_angle_shift_moves_the_showers_not_their_labels():
    angle = quality.load_thresholds("3dgan-angle", smoke=True)
    plain, shifted = standin_sample(angle, 8), candidate_sample(angle, 8, Distortion("angle", 5.0))
    np.testing.assert_allclose(shifted.theta_rad, plain.theta_rad, atol=1e-6)
    np.testing.assert_array_equal(shifted.energy_gev, plain.energy_gev)
    assert not np.allclose(shifted.ecal_gev, plain.ecal_gev)
    assert [d.kind for d in distortions("angle")].count("angle") == 4
    assert all(d.kind != "angle" for d in distortions("fixed"))


def test_labels_pairs_and_summaries():
    assert Distortion("deeper", 1).label == "every shower 1 layer deeper"
    assert Distortion("scale", 1.05).label == "every cell x1.05"
    assert Distortion("depth-spread", 0.5).label == "depth fluctuation x0.5"
    assert parse_pairs("7:8,9:10") == [(7, 8), (9, 10)]
    for bad in ("7", "7:7", "a:b", ""):
        with pytest.raises(InputError, match="--pairs"):
            parse_pairs(bad)
    names = ["profile_l1.z", "separation.moment_z1.E45-55", "separation.moment_z1.E95-105"]
    assert failing_summary(names) == "profile_l1.z, separation.moment_z1 in 2 bins"
