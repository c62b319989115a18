"""What a target lets through: the noise-floor target passes an undistorted pair and fails a 5%
scale error and a one-layer shift; an angle distortion keeps the labels and moves the showers."""
import numpy as np
import pytest

from benchmark import quality
from benchmark.calibration import standin_sample
from benchmark.distortions import Distortion, candidate_sample, distortions, failing_summary, lets_through
from harness.commands.distortions import parse_pairs
from reference_model.errors import InputError


def test_the_noise_floor_target_fails_scale_and_depth_errors():
    v1 = quality.load_thresholds("3dgan", version="3dgan-quality-v1")
    rows = lets_through(v1, [(7, 8)], [Distortion("none"), Distortion("scale", 1.05), Distortion("deeper", 1)])
    assert [row.passes for row in rows] == [1, 0, 0]
    assert "objective.sampling_fraction" in rows[1].failures[0]


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
    assert parse_pairs("7:8,9:10") == [(7, 8), (9, 10)]
    for bad in ("7", "7:7", "a:b", ""):
        with pytest.raises(InputError, match="--pairs"):
            parse_pairs(bad)
    names = ["profile_l1.z", "separation.moment_z1.E45-55", "separation.moment_z1.E95-105"]
    assert failing_summary(names) == "profile_l1.z, separation.moment_z1 in 2 bins"
