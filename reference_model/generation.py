"""Showers from a generator, written once for every way a generator runs.

The trainer's and `harness validate`'s Keras model and each inference precision's runner
(TensorFlow float32/bfloat16, OpenVINO int8) all turn conditions into showers the same way:
latent vectors from `spec.generator_input`, the forward in batches, images converted to GeV.
Only the forward differs, so it is the one argument that varies; the quality gate then sees
showers made identically whatever ran them.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from reference_model.showers import Showers
from reference_model.specs import ModelSpec

# (B, latent) float32 conditioned latents -> generator images (B, X, Y, Z[, 1]) in model units
Forward = Callable[[np.ndarray], Any]


def generate_showers(spec: ModelSpec, forward: Forward, energy_gev: np.ndarray,
                     theta_rad: Optional[np.ndarray] = None, seed: int = 0,
                     batch_size: int = 128) -> Showers:
    """Showers in GeV conditioned on the given energies (and angles), `batch_size` at a time.

    `forward` is e.g. a precision runner, or `functools.partial(keras_model, training=False)`.
    The latents depend only on the conditions and `seed`, never on `forward` or the batch size,
    so two forwards given the same arguments are compared shower for shower.
    """
    rng = np.random.default_rng(seed)
    energy_gev = np.asarray(energy_gev, dtype=np.float32)
    latent = spec.generator_input(energy_gev, theta_rad, rng)
    out = np.empty((len(latent), *spec.image_shape), dtype=np.float32)
    for start in range(0, len(latent), batch_size):
        images = forward(latent[start:start + batch_size])
        out[start:start + batch_size] = spec.images_to_gev(np.asarray(images))
    theta = None if theta_rad is None else np.asarray(theta_rad, dtype=np.float32)
    return Showers(out, energy_gev, theta)
