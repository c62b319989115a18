"""The two frozen reference benchmarks: model builders, conditioning and units, by name.

Everything that differs between the fixed-angle and the variable-angle 3DGAN is looked up
here, so the trainer, the inference benchmark and the validator stay geometry-agnostic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from reference_model import transforms
from reference_model.showers import ANGLE, FIXED, IMAGE_SHAPES

MODEL_VERSION = "1.0"


@dataclass(frozen=True)
class ModelSpec:
    """A frozen reference 3DGAN: what is built, how it is conditioned, how it is trained."""

    benchmark: str  # the suite's benchmark name
    geometry: str  # FIXED or ANGLE
    latent_size: int
    loss_weights: tuple[float, ...]  # [gen, aux, (angle,) ecal]
    # The original training's hyper-parameters live here (the model trains with them outside any
    # benchmark); benchmark/recipe.py reads them for the closed division.
    reference_batch_size: int  # per-step batch of the original single-node training
    learning_rate: float = 1e-3  # RMSprop
    label_flip_probability: float = 0.05

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return IMAGE_SHAPES[self.geometry]

    @property
    def name(self) -> str:
        return f"{self.benchmark}-reference"

    def build_generator(self):
        from reference_model import models
        return models.fixed_generator() if self.geometry == FIXED else models.angle_generator()

    def build_discriminator(self):
        from reference_model import models
        return models.fixed_discriminator() if self.geometry == FIXED else models.angle_discriminator()

    def generator_input(self, energy_gev: np.ndarray, theta_rad: Optional[np.ndarray],
                        rng: np.random.Generator) -> np.ndarray:
        """The conditioned latent for showers of the given energies (and angles), float32."""
        e = np.asarray(energy_gev, dtype=np.float32)[:, None] / np.float32(transforms.ENERGY_SCALE)
        if self.geometry == FIXED:
            z = rng.standard_normal((len(e), self.latent_size), dtype=np.float32)
            return e * z
        if theta_rad is None:
            raise ValueError(f"{self.benchmark} needs incidence angles to generate showers")
        z = rng.standard_normal((len(e), self.latent_size - 2), dtype=np.float32)
        theta = np.asarray(theta_rad, dtype=np.float32)[:, None]
        return np.concatenate([e, theta, z], axis=1)

    def images_to_gev(self, images: np.ndarray) -> np.ndarray:
        """Generator output (B, X, Y, Z[, 1]) to GeV cells (B, X, Y, Z)."""
        images = np.asarray(images)
        if images.ndim == 5:
            images = images[..., 0]
        if self.geometry == FIXED:
            return transforms.fixed_gev_from_images(images)
        return transforms.angle_gev_from_images(images)


SPECS: dict[str, ModelSpec] = {
    "3dgan": ModelSpec("3dgan", FIXED, latent_size=200, loss_weights=(2.0, 0.1, 0.1),
                       reference_batch_size=128),
    "3dgan-angle": ModelSpec("3dgan-angle", ANGLE, latent_size=256,
                             loss_weights=(3.0, 0.1, 25.0, 0.1), reference_batch_size=64),
}
BENCHMARKS = tuple(SPECS)


def get_spec(benchmark: str) -> ModelSpec:
    try:
        return SPECS[benchmark]
    except KeyError:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(SPECS)}") from None


def spec_for_geometry(geometry: str) -> ModelSpec:
    return next(s for s in SPECS.values() if s.geometry == geometry)


