"""Physics observables on hand-built images whose answers are known, and the NumPy measured
angle against the TensorFlow one the discriminator uses."""
import math

import numpy as np
import pytest

from reference_model import physics
from reference_model.showers import Showers


def _empty(n=1, shape=(25, 25, 25)):
    return np.zeros((n, *shape), dtype=np.float32)


def test_sampling_fraction_is_ecal_sum_over_primary_energy():
    images = _empty(2)
    images[0, 1, 2, 3] = 1.0
    images[0, 4, 4, 4] = 1.0
    images[1, 0, 0, 0] = 3.0
    showers = Showers(images, np.array([100.0, 50.0], np.float32))
    np.testing.assert_allclose(physics.ecal_sum(showers), [2.0, 3.0])
    np.testing.assert_allclose(physics.sampling_fraction(showers), [0.02, 0.06])


def test_shower_shapes_project_onto_each_axis():
    images = _empty()
    images[0, 3, 7, 11] = 2.0
    shapes = physics.shower_shapes(images)
    for axis, index in zip("xyz", (3, 7, 11)):
        expected = np.zeros(25)
        expected[index] = 2.0
        np.testing.assert_array_equal(shapes[axis][0], expected)


def test_moments_use_zero_based_index_and_central_moments_over_the_ecal_sum():
    images = _empty()
    images[0, 2, 5, 5] = 1.0
    images[0, 4, 5, 5] = 3.0
    m = physics.moments(images)
    # M1 = (2*1 + 4*3)/4; M2 = (1*1.5^2 + 3*0.5^2)/4; M3 = (1*(-1.5)^3 + 3*0.5^3)/4
    np.testing.assert_allclose(m["x"][0], [3.5, 0.75, -0.75])
    np.testing.assert_allclose(m["y"][0], [5.0, 0.0, 0.0])


def test_empty_shower_has_zero_moments_not_nan():
    m = physics.moments(_empty())
    for axis in "xyz":
        np.testing.assert_array_equal(m[axis], 0.0)


def test_hits_count_cells_strictly_above_the_threshold():
    images = _empty()
    images[0, 0, 0, :3] = [physics.HIT_THRESHOLD_GEV, 3e-4, 1.0]
    assert physics.hits(images)[0] == 2
    assert physics.hits(images, threshold_gev=0.5)[0] == 1


def test_depth_fractions_split_layers_0_8_16_25():
    images = _empty()
    images[0, 0, 0, 7] = 1.0
    images[0, 0, 0, 8] = 2.0
    images[0, 0, 0, 24] = 1.0
    np.testing.assert_allclose(physics.depth_fractions(images)[0], [0.25, 0.5, 0.25])


def test_max_position_is_the_hottest_cell():
    images = _empty(2)
    images[0, 1, 2, 3] = 5.0
    images[0, 9, 9, 9] = 1.0
    images[1, 20, 0, 24] = 0.1
    np.testing.assert_array_equal(physics.max_position(images), [[1, 2, 3], [20, 0, 24]])


def _tilted_line(slope: int, shape=(51, 51, 25)) -> np.ndarray:
    """A shower along y = 10 + slope * z in layers 0-23 (the barycentre falls between layer centres)."""
    image = np.zeros(shape, dtype=np.float32)
    for z in range(24):
        image[25, 10 + slope * z, z] = 1.0
    return image


@pytest.mark.parametrize("slope, degrees", [(0, 90.0), (1, 45.0)])
def test_measured_angle_of_a_straight_track(slope, degrees):
    angle = physics.measured_angle(_tilted_line(slope)[None])
    assert math.degrees(angle[0]) == pytest.approx(degrees, abs=1e-6)


def test_measured_angle_of_an_empty_image_is_100():
    assert physics.measured_angle(_empty(shape=(51, 51, 25)))[0] == physics.EMPTY_SHOWER_ANGLE


def test_measured_angle_agrees_with_the_tensorflow_version():
    import tensorflow as tf

    from reference_model.models import measured_angle as tf_measured_angle

    rng = np.random.default_rng(3)
    occupied = rng.random((6, 51, 51, 25)) < 0.05
    images = (occupied * rng.gamma(0.5, 1e-2, size=occupied.shape)).astype(np.float32)
    images[4] = _tilted_line(1)
    images[5] = 0.0  # empty
    expected = tf_measured_angle(tf.constant(images[..., None])).numpy()[:, 0]
    np.testing.assert_allclose(physics.measured_angle(images), expected, atol=1e-4)


def test_energy_and_angle_bins():
    energy = np.array([44.9, 45.1, 50.0, 54.9, 55.0, 100.0])
    assert physics.energy_bin_edges([50, 100]) == [(45.0, 55.0), (95.0, 105.0)]
    np.testing.assert_array_equal(physics.energy_bin_mask(energy, 45.0, 55.0),
                                  [False, True, True, True, False, False])
    theta = np.radians([62.0, 68.5, 90.0, 95.0, 118.0, 125.0])  # 0.1 rad = 5.7 deg
    masks = physics.angle_bin_masks(theta)
    assert sorted(masks) == [62.0, 90.0, 118.0]
    np.testing.assert_array_equal(masks[62.0], [True, False, False, False, False, False])
    np.testing.assert_array_equal(masks[90.0], [False, False, True, True, False, False])  # 5 deg < 0.1 rad
    np.testing.assert_array_equal(masks[118.0], [False, False, False, False, True, False])


def test_features_in_chunks_match_the_single_observables(monkeypatch):
    monkeypatch.setattr(physics, "CHUNK_EVENTS", 3)
    rng = np.random.default_rng(0)
    occupied = rng.random((7, 51, 51, 25)) < 0.03
    images = (occupied * rng.gamma(0.5, 1e-3, size=occupied.shape)).astype(np.float32)
    showers = Showers(images, rng.uniform(10, 500, 7).astype(np.float32),
                      rng.uniform(1.1, 2.0, 7).astype(np.float32))
    features = physics.ShowerFeatures.of(showers)
    np.testing.assert_allclose(features.sampling_fraction, physics.sampling_fraction(showers), rtol=1e-6)
    np.testing.assert_array_equal(features.hits, physics.hits(showers))
    np.testing.assert_array_equal(features.max_position, physics.max_position(showers))
    np.testing.assert_allclose(features.measured_angle, physics.measured_angle(showers), rtol=1e-6)
    np.testing.assert_allclose(features.depth_fractions, physics.depth_fractions(showers), rtol=1e-5)
    for axis, values in physics.moments(showers).items():
        np.testing.assert_allclose(features.moments[axis], values, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(features.shapes[axis], physics.shower_shapes(showers)[axis], rtol=1e-5)
    half = features.subset(np.arange(3))
    assert len(half) == 3 and half.theta_rad is not None


def test_measured_angle_follows_the_stand_in_incidence_angle():
    from reference_model.simulator import simulate

    showers = simulate(150, "angle", seed=5, energy_range=(100.0, 200.0))
    measured = np.degrees(physics.measured_angle(showers))
    truth = np.degrees(showers.theta_rad)
    assert np.corrcoef(measured, truth)[0, 1] > 0.9
    for centre, mask in physics.angle_bin_masks(showers.theta_rad).items():
        if mask.sum() >= 5:
            assert abs(np.median(measured[mask]) - centre) < 10.0
