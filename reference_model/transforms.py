"""The reference preprocessing (3dgan-reference.md section 1.5) and its inverse, in one place.

Training sees scaled images; physics is judged in GeV. Both directions live here so the data
pipeline, the trainer and the inference benchmark cannot disagree about units.
"""
from __future__ import annotations

import numpy as np

FIXED_XSCALE = 100.0  # fixed geometry: training image = 100 x GeV
FIXED_CUT_GEV = 1e-6  # cells below this are zeroed before scaling
ANGLE_DSCALE = 50.0  # angle files store GeV x 50 ("Geant is in units of 1/50 GeV")
ANGLE_POWER = 0.85  # angle training image = (GeV x 50) ** 0.85
ANGLE_MIN_SUM_RAW = 10.0  # keep angle events with more than 0.2 GeV deposited (raw units)
ENERGY_SCALE = 100.0  # the energy condition is E / 100 GeV

# SF(E) fit of the ECAL sum (GetEcalFit, mod 1): sum = polyval(SF_POLY, E/100) * E/100 * xscale.
SF_POLY = (0.0018, -0.023, 0.11, -0.28, 2.21)


def sampling_fraction_fit(energy_gev: np.ndarray) -> np.ndarray:
    """The data-driven sampling fraction SF(E) = polyval(SF_POLY, E/100) / 100."""
    return np.polyval(SF_POLY, np.asarray(energy_gev) / ENERGY_SCALE) / 100.0


def fixed_images_from_gev(ecal_gev: np.ndarray) -> np.ndarray:
    """GeV cells to the fixed-angle training image (cut at 1e-6 GeV, then x100), float32."""
    x = np.where(ecal_gev < FIXED_CUT_GEV, 0.0, ecal_gev).astype(np.float32)
    return x * np.float32(FIXED_XSCALE)


def fixed_gev_from_images(images: np.ndarray) -> np.ndarray:
    """Fixed-angle generator output (x100 units) back to GeV."""
    return np.asarray(images, dtype=np.float32) / np.float32(FIXED_XSCALE)


def angle_raw_from_gev(ecal_gev: np.ndarray) -> np.ndarray:
    """GeV cells to the angle files' raw units (GeV x 50)."""
    return np.asarray(ecal_gev, dtype=np.float32) * np.float32(ANGLE_DSCALE)


def angle_images_from_raw(ecal_raw: np.ndarray) -> np.ndarray:
    """Raw angle cells (GeV x 50) to the training image, raw ** 0.85."""
    return np.power(np.maximum(ecal_raw, 0.0), ANGLE_POWER).astype(np.float32)


def angle_gev_from_images(images: np.ndarray) -> np.ndarray:
    """Angle generator output back to GeV: G ** (1/0.85) / 50."""
    g = np.maximum(np.asarray(images, dtype=np.float32), 0.0)
    return (np.power(g, 1.0 / ANGLE_POWER) / ANGLE_DSCALE).astype(np.float32)


def fixed_ecal_target(energy_condition: np.ndarray) -> np.ndarray:
    """ECAL-sum target for fakes in x100 units, from the condition e = E/100 (GetEcalFit mod 1)."""
    e = np.asarray(energy_condition)
    return np.polyval(SF_POLY, e) * e * FIXED_XSCALE
