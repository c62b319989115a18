"""Physics observables of calorimeter showers, vectorised over events (3dgan-reference.md section 4).

Every function takes GeV images (N, X, Y, Z) or a `Showers` and returns one value (or one
profile) per event, so the validator, the quality gate and the calibration compute exactly
the same numbers. Conventions follow the original analysis code: 0-based cell index for
moments, cell centres at index + 0.5 for the measured angle, hits above 2e-4 GeV.

`ShowerFeatures.of(showers)` computes everything the gate needs in one chunked pass, so a
10,000-shower sample is read from memory only a few times and temporaries stay bounded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from reference_model.showers import Showers

AXES = ("x", "y", "z")
MOMENT_ORDERS = (1, 2, 3)
HIT_THRESHOLD_GEV = 2e-4  # get_hits default: cells above 0.2 MeV
ENERGY_TOLERANCE_GEV = 5.0  # |E - E_bin| < 5 GeV
ANGLE_BINS_DEG = (62.0, 90.0, 118.0)
ANGLE_TOLERANCE_RAD = 0.1
DEPTH_THIRDS = ((0, 8), (8, 16), (16, 25))  # ratio{1,2,3}_total layer ranges
EMPTY_SHOWER_ANGLE = 100.0  # the reference's measured angle of an empty image
ANGLE_EPSILON = 1e-7  # Keras epsilon, as in the TF `measured_angle`; avoids 0/0 at the barycentre
CHUNK_EVENTS = 512  # events per pass in `ShowerFeatures.of`; bounds temporaries

ShowersOrImages = Union[Showers, np.ndarray]


def images_of(showers: ShowersOrImages) -> np.ndarray:
    """The (N, X, Y, Z) GeV array of a `Showers` or of an array (a trailing channel axis is dropped)."""
    images = showers.ecal_gev if isinstance(showers, Showers) else np.asarray(showers)
    if images.ndim == 5 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 4:
        raise ValueError(f"expected showers of shape (N, X, Y, Z), got {images.shape}")
    return images


# -- per-event observables ------------------------------------------------------------------
def ecal_sum(showers: ShowersOrImages) -> np.ndarray:
    """Deposited ECAL energy per event, GeV."""
    return images_of(showers).sum(axis=(1, 2, 3), dtype=np.float64)


def sampling_fraction(showers: Showers) -> np.ndarray:
    """ECAL sum over primary energy, per event."""
    return ecal_sum(showers) / np.asarray(showers.energy_gev, dtype=np.float64)


def shower_shapes(showers: ShowersOrImages) -> dict[str, np.ndarray]:
    """Energy profile along each axis per event: x -> (N, X), y -> (N, Y), z -> (N, Z) (longitudinal)."""
    images = images_of(showers)
    xz = images.sum(axis=2, dtype=np.float64)  # (N, X, Z)
    return {"x": xz.sum(axis=2), "y": images.sum(axis=(1, 3), dtype=np.float64), "z": xz.sum(axis=1)}


def profile_moments(profile: np.ndarray, total: Optional[np.ndarray] = None,
                    orders: Sequence[int] = MOMENT_ORDERS) -> np.ndarray:
    """Moments of (N, L) profiles along their cell index i (0-based): M1 = sum(i S_i)/E and
    M_k = sum((i - M1)^k S_i)/E for k >= 2 (central, not standardised), with E the ECAL sum.

    Empty showers get 0 for every moment: a defined value far from any real shower, so an
    empty candidate counts against itself instead of vanishing as NaN.
    """
    profile = np.asarray(profile, dtype=np.float64)
    total = profile.sum(axis=1) if total is None else np.asarray(total, dtype=np.float64)
    safe_total = np.where(total > 0, total, 1.0)
    index = np.arange(profile.shape[1], dtype=np.float64)
    first = profile @ index / safe_total
    out = np.empty((len(profile), len(orders)))
    for column, k in enumerate(orders):
        if k == 1:
            out[:, column] = first
        else:
            out[:, column] = np.einsum("nl,nl->n", profile, (index[None, :] - first[:, None]) ** k) / safe_total
    out[total <= 0] = 0.0
    return out


def moments(showers: ShowersOrImages, orders: Sequence[int] = MOMENT_ORDERS) -> dict[str, np.ndarray]:
    """Moments along x, y, z per event: axis -> (N, len(orders)); see `profile_moments`."""
    shapes = shower_shapes(showers)
    total = shapes["z"].sum(axis=1)
    return {axis: profile_moments(shapes[axis], total, orders) for axis in AXES}


def hits(showers: ShowersOrImages, threshold_gev: float = HIT_THRESHOLD_GEV) -> np.ndarray:
    """Number of cells above `threshold_gev` per event."""
    return np.count_nonzero(images_of(showers) > threshold_gev, axis=(1, 2, 3))


def depth_fractions(showers: ShowersOrImages) -> np.ndarray:
    """Fraction of the deposited energy in layers [0, 8), [8, 16), [16, 25): (N, 3); 0 when empty."""
    return _depth_fractions(shower_shapes(showers)["z"])


def _depth_fractions(longitudinal: np.ndarray) -> np.ndarray:
    total = longitudinal.sum(axis=1)
    parts = np.stack([longitudinal[:, lo:hi].sum(axis=1) for lo, hi in DEPTH_THIRDS], axis=1)
    return parts / np.where(total > 0, total, 1.0)[:, None]


def max_position(showers: ShowersOrImages) -> np.ndarray:
    """(x, y, z) index of the hottest cell per event, (N, 3) int."""
    images = images_of(showers)
    flat = images.reshape(len(images), -1).argmax(axis=1)
    return np.stack(np.unravel_index(flat, images.shape[1:]), axis=1)


def measured_angle(ecal_gev: ShowersOrImages) -> np.ndarray:
    """Measured incidence angle per event in radians (section 4.3, `measPython`); 100 when empty.

    The energy-weighted (by depth) mean over non-empty layers of pi/2 - atan of the slope of
    the layer's y centroid against depth, relative to the shower barycentre.
    """
    images = images_of(ecal_gev)
    return _angle_from_projections(images.sum(axis=2, dtype=np.float64),
                                   images.sum(axis=1, dtype=np.float64))


def _angle_from_projections(xz: np.ndarray, yz: np.ndarray) -> np.ndarray:
    """`measured_angle` from the (N, X, Z) and (N, Y, Z) projections of the images."""
    nx, nz = xz.shape[1], xz.shape[2]
    ny = yz.shape[1]
    cx, cy, cz = (np.arange(n, dtype=np.float64) + 0.5 for n in (nx, ny, nz))
    layer = xz.sum(axis=1)  # (N, Z)
    total = layer.sum(axis=1)
    safe_total = np.where(total > 0, total, 1.0)
    x_ref = np.einsum("nxz,x->n", xz, cx) / safe_total
    y_ref = np.einsum("nyz,y->n", yz, cy) / safe_total
    z_ref = layer @ cz / safe_total
    filled = layer > 0
    safe_layer = np.where(filled, layer, 1.0)
    x_mid = np.where(filled, np.einsum("nxz,x->nz", xz, cx) / safe_layer, 0.0)
    y_mid = np.where(filled, np.einsum("nyz,y->nz", yz, cy) / safe_layer, 0.0)
    dz = cz[None, :] - z_ref[:, None]
    zproj = np.sqrt(np.maximum((x_mid - x_ref[:, None]) ** 2 + dz ** 2, ANGLE_EPSILON))
    slope = (y_mid - y_ref[:, None]) / zproj
    slope = np.where(dz < 0, -slope, slope)
    weight = cz[None, :] * filled
    angle = ((math.pi / 2 - np.arctan(slope)) * weight).sum(axis=1) / np.maximum(weight.sum(axis=1), ANGLE_EPSILON)
    return np.where(total > 0, angle, EMPTY_SHOWER_ANGLE)


# -- binning --------------------------------------------------------------------------------
def energy_bin_mask(energy_gev: np.ndarray, low_gev: float, high_gev: float) -> np.ndarray:
    """Events with low < E < high (a +-5 GeV bin around E_bin is (E_bin - 5, E_bin + 5))."""
    energy = np.asarray(energy_gev)
    return (energy > low_gev) & (energy < high_gev)


def energy_bin_edges(centres_gev: Sequence[float],
                     tolerance_gev: float = ENERGY_TOLERANCE_GEV) -> list[tuple[float, float]]:
    """The reference's energy bins |E - E_bin| < tolerance as (low, high) pairs."""
    return [(float(c) - tolerance_gev, float(c) + tolerance_gev) for c in centres_gev]


def angle_bin_masks(theta_rad: np.ndarray, centres_deg: Sequence[float] = ANGLE_BINS_DEG,
                    tolerance_rad: float = ANGLE_TOLERANCE_RAD) -> dict[float, np.ndarray]:
    """Events within +-0.1 rad of each analysis angle (62, 90, 118 degrees): centre -> mask."""
    theta = np.asarray(theta_rad, dtype=np.float64)
    return {c: np.abs(theta - math.radians(c)) < tolerance_rad for c in centres_deg}


# -- everything at once ---------------------------------------------------------------------
@dataclass
class ShowerFeatures:
    """Per-event observables of a sample, computed once and shared by metrics, plots and reports."""

    energy_gev: np.ndarray  # (N,)
    theta_rad: Optional[np.ndarray]  # (N,) or None
    ecal_sum: np.ndarray  # (N,) GeV
    shapes: dict[str, np.ndarray]  # axis -> (N, L) GeV
    moments: dict[str, np.ndarray]  # axis -> (N, 3): M1, M2, M3
    hits: np.ndarray  # (N,)
    measured_angle: np.ndarray  # (N,) rad
    depth_fractions: np.ndarray  # (N, 3)
    max_position: np.ndarray  # (N, 3)

    @property
    def sampling_fraction(self) -> np.ndarray:
        return self.ecal_sum / np.asarray(self.energy_gev, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.ecal_sum)

    def subset(self, index: np.ndarray) -> "ShowerFeatures":
        return ShowerFeatures(
            energy_gev=self.energy_gev[index],
            theta_rad=None if self.theta_rad is None else self.theta_rad[index],
            ecal_sum=self.ecal_sum[index], shapes={a: s[index] for a, s in self.shapes.items()},
            moments={a: m[index] for a, m in self.moments.items()}, hits=self.hits[index],
            measured_angle=self.measured_angle[index], depth_fractions=self.depth_fractions[index],
            max_position=self.max_position[index])

    @classmethod
    def of(cls, showers: Showers, threshold_gev: float = HIT_THRESHOLD_GEV) -> "ShowerFeatures":
        """Compute every observable in chunks: two projections, the hit count and the argmax per chunk."""
        images = images_of(showers)
        n, nx, ny, nz = images.shape
        xz = np.empty((n, nx, nz))
        yz = np.empty((n, ny, nz))
        n_hits = np.empty(n, dtype=np.int64)
        hottest = np.empty(n, dtype=np.int64)
        for start in range(0, n, CHUNK_EVENTS):
            chunk = images[start:start + CHUNK_EVENTS]
            stop = start + len(chunk)
            xz[start:stop] = chunk.sum(axis=2)
            yz[start:stop] = chunk.sum(axis=1)
            n_hits[start:stop] = np.count_nonzero(chunk > threshold_gev, axis=(1, 2, 3))
            hottest[start:stop] = chunk.reshape(len(chunk), -1).argmax(axis=1)
        shapes = {"x": xz.sum(axis=2), "y": yz.sum(axis=2), "z": xz.sum(axis=1)}
        total = shapes["z"].sum(axis=1)
        theta = None if showers.theta_rad is None else np.asarray(showers.theta_rad, dtype=np.float64)
        return cls(
            energy_gev=np.asarray(showers.energy_gev, dtype=np.float64), theta_rad=theta,
            ecal_sum=total, shapes=shapes,
            moments={axis: profile_moments(shapes[axis], total) for axis in AXES},
            hits=n_hits, measured_angle=_angle_from_projections(xz, yz),
            depth_fractions=_depth_fractions(shapes["z"]),
            max_position=np.stack(np.unravel_index(hottest, (nx, ny, nz)), axis=1))
