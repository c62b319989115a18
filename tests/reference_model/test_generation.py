"""Every forward (Keras model, precision runner) turns conditions into showers the same way."""
import numpy as np
import pytest

from reference_model.generation import generate_showers
from reference_model.specs import get_spec

ENERGIES = np.array([10.0, 50.0, 120.0, 250.0, 400.0], dtype=np.float64)


class RecordingForward:
    """A deterministic stand-in generator: each image is a function of its own latent only."""

    def __init__(self, spec):
        self.spec, self.batches, self.latents = spec, [], []

    def __call__(self, latent):
        self.batches.append(len(latent))
        self.latents.append(latent)
        scale = np.abs(latent).sum(axis=1, dtype=np.float32)[:, None, None, None, None]
        return np.ones((len(latent), *self.spec.image_shape, 1), np.float32) * scale / 1000.0


@pytest.mark.parametrize("name", ["3dgan", "3dgan-angle"])
def test_showers_do_not_depend_on_the_batch_size(name):
    spec = get_spec(name)
    theta = None if spec.geometry == "fixed" else np.radians(np.linspace(60, 120, len(ENERGIES)))
    one_batch, small = RecordingForward(spec), RecordingForward(spec)
    whole = generate_showers(spec, one_batch, ENERGIES, theta, seed=7, batch_size=128)
    batched = generate_showers(spec, small, ENERGIES, theta, seed=7, batch_size=2)
    assert one_batch.batches == [5] and small.batches == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate(small.latents), one_batch.latents[0])
    np.testing.assert_array_equal(batched.ecal_gev, whole.ecal_gev)
    expected = spec.images_to_gev(one_batch(spec.generator_input(ENERGIES, theta, np.random.default_rng(7))))
    np.testing.assert_array_equal(whole.ecal_gev, expected)
    assert whole.ecal_gev.dtype == np.float32 and whole.energy_gev.dtype == np.float32
    np.testing.assert_array_equal(whole.energy_gev, ENERGIES.astype(np.float32))
    if theta is None:
        assert whole.theta_rad is None
    else:
        np.testing.assert_array_equal(whole.theta_rad, theta.astype(np.float32))


def test_the_seed_picks_the_latents():
    spec = get_spec("3dgan")
    first, again, other = (RecordingForward(spec) for _ in range(3))
    generate_showers(spec, first, ENERGIES, seed=1)
    generate_showers(spec, again, ENERGIES, seed=1)
    generate_showers(spec, other, ENERGIES, seed=2)
    np.testing.assert_array_equal(first.latents[0], again.latents[0])
    assert not np.array_equal(first.latents[0], other.latents[0])
