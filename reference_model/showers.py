"""Calorimeter showers in physical units: the one currency every module exchanges.

Readers, the stand-in simulator, the generator's inverse transform and the physics metrics all
speak `Showers` in GeV, so a metric never has to know whether an image came from Geant4, from
the stand-in or from a GAN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

FIXED = "fixed"
ANGLE = "angle"
GEOMETRIES = (FIXED, ANGLE)
IMAGE_SHAPES = {FIXED: (25, 25, 25), ANGLE: (51, 51, 25)}


@dataclass
class Showers:
    """A batch of ECAL showers: deposited energy per cell in GeV, with their conditions."""

    ecal_gev: np.ndarray  # (N, X, Y, Z) float32, GeV per cell
    energy_gev: np.ndarray  # (N,) primary energy, GeV
    theta_rad: Optional[np.ndarray] = None  # (N,) incidence angle, radians (angle geometry)

    def __post_init__(self) -> None:
        if self.ecal_gev.ndim != 4:
            raise ValueError(f"showers must be (N, X, Y, Z), got shape {self.ecal_gev.shape}")
        if len(self.energy_gev) != len(self.ecal_gev):
            raise ValueError(
                f"{len(self.ecal_gev)} showers but {len(self.energy_gev)} primary energies")
        if self.theta_rad is not None and len(self.theta_rad) != len(self.ecal_gev):
            raise ValueError(f"{len(self.ecal_gev)} showers but {len(self.theta_rad)} angles")

    @property
    def geometry(self) -> str:
        for name, shape in IMAGE_SHAPES.items():
            if tuple(self.ecal_gev.shape[1:]) == shape:
                return name
        raise ValueError(f"no known geometry has image shape {self.ecal_gev.shape[1:]}")

    def __len__(self) -> int:
        return len(self.ecal_gev)

    def subset(self, index: np.ndarray | slice) -> "Showers":
        theta = None if self.theta_rad is None else self.theta_rad[index]
        return Showers(self.ecal_gev[index], self.energy_gev[index], theta)
