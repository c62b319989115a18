"""What a target lets through: two independent stand-in samples judged against each other, the
second distorted in a known way (an energy-scale error, showers starting deeper, showers whose
depth fluctuates less from one to the next, for the angle benchmark showers at the wrong incidence
angle). A target that means physics passes the undistorted pair and fails a 5% scale error and a
one-layer shift; CALIBRATION.md records the table this module makes for every target version.

The pairs' seeds are disjoint from every calibration, campaign and hold-test seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from benchmark import quality
from benchmark.calibration import standin_sample
from reference_model.physics import energy_bin_mask, moments
from reference_model.showers import FIXED, Showers

PAIRS = ((7, 8), (9, 10))  # (reference seed, candidate seed)


@dataclass(frozen=True)
class Distortion:
    """One known error of a candidate: `kind` 'none', 'scale' (every cell x amount), 'deeper'
    (every shower `amount` layers deeper), 'depth-spread' (every shower's depth `amount` times as
    far from its energy bin's mean depth) or 'angle' (`amount` degrees larger incidence angle)."""

    kind: str
    amount: float = 0.0

    @property
    def label(self) -> str:
        return {"none": "unchanged", "scale": f"every cell x{self.amount:g}",
                "deeper": f"every shower {self.amount:g} layer{'s' if self.amount != 1 else ''} deeper",
                "depth-spread": f"depth fluctuation x{self.amount:g}",
                "angle": f"every shower at +{self.amount:g} deg incidence"}[self.kind]


def distortions(geometry: str) -> list[Distortion]:
    """The table's rows: the rules' energy scales and depth shifts, the depth fluctuation halved
    and at three quarters (what the fixed step's generators lose as they train: CALIBRATION.md),
    and angle shifts for angle."""
    rows = [Distortion("none"), *(Distortion("scale", f) for f in (1.05, 1.1, 1.2)),
            *(Distortion("deeper", n) for n in (1, 2, 3)), *(Distortion("depth-spread", f) for f in (0.5, 0.75))]
    return rows if geometry == FIXED else rows + [Distortion("angle", a) for a in (2.0, 5.0, 10.0, 15.0)]


def deeper(showers: Showers, layers: int) -> Showers:
    """Every shower moved `layers` layers deeper (the first layers empty, the last ones lost)."""
    shifts = np.full(len(showers.ecal_gev), float(layers))
    return Showers(shifted_along_depth(showers.ecal_gev, shifts), showers.energy_gev, showers.theta_rad)


def shifted_along_depth(images: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """Each (X, Y, Z) image moved `layers[i]` layers along Z (fractions by linear interpolation
    between neighbouring layers, so the first moment moves by exactly that much while nothing
    leaves the last layer); what moves past either end is lost."""
    out = np.zeros_like(images)
    depth = images.shape[-1]
    for i, shift in enumerate(layers):
        whole = int(np.floor(shift))
        fraction = np.float32(shift - whole)
        for k, weight in ((whole, 1 - fraction), (whole + 1, fraction)):
            if weight == 0 or abs(k) >= depth:
                continue
            source = slice(max(0, -k), depth - max(0, k))
            target = slice(max(0, k), depth - max(0, -k))
            out[i, ..., target] += weight * images[i, ..., source]
    return out


def narrower_depth(showers: Showers, factor: float, bins: Sequence[tuple[float, float]]) -> Showers:
    """Every shower moved along the depth so its first moment sits `factor` times as far from its
    energy bin's mean as before: the shower-to-shower depth fluctuation scaled, each shower's
    place in the distribution and its shape kept."""
    depth = moments(showers)["z"][:, 0]
    target = depth.copy()
    for low, high in bins:
        in_bin = energy_bin_mask(showers.energy_gev, low, high)
        if in_bin.any():
            mean = depth[in_bin].mean()
            target[in_bin] = mean + factor * (depth[in_bin] - mean)
    return Showers(shifted_along_depth(showers.ecal_gev, target - depth), showers.energy_gev, showers.theta_rad)


def candidate_sample(thresholds: quality.Thresholds, seed: int, distortion: Distortion) -> Showers:
    if distortion.kind == "angle":
        return standin_sample(thresholds, seed, theta_shift_deg=distortion.amount)
    showers = standin_sample(thresholds, seed)
    if distortion.kind == "scale":
        return Showers(showers.ecal_gev * np.float32(distortion.amount), showers.energy_gev, showers.theta_rad)
    if distortion.kind == "deeper":
        return deeper(showers, int(distortion.amount))
    if distortion.kind == "depth-spread":
        return narrower_depth(showers, distortion.amount, thresholds.energy_bins_gev)
    return showers


@dataclass(frozen=True)
class Row:
    distortion: Distortion
    failures: tuple[tuple[str, ...], ...]  # per pair, the gated metrics it fails
    values: tuple[dict[str, float], ...] = ()  # per pair, every metric's value

    @property
    def passes(self) -> int:
        return sum(not f for f in self.failures)


def lets_through(thresholds: quality.Thresholds, pairs: Sequence[tuple[int, int]] = PAIRS,
                 rows: Sequence[Distortion] = ()) -> list[Row]:
    """Each distortion judged on every pair under `thresholds`."""
    references = {a: standin_sample(thresholds, a) for a, _ in pairs}
    table = []
    for distortion in rows or distortions(thresholds.geometry):
        reports = [quality.evaluate(references[a], candidate_sample(thresholds, b, distortion), thresholds)
                   for a, b in pairs]
        table.append(Row(distortion, tuple(tuple(r.name for r in report.failures()) for report in reports),
                         tuple({r.name: r.value for r in report.results} for report in reports)))
    return table


def failing_summary(names: Sequence[str], shown: int = 3) -> str:
    """'objective.sampling_fraction, separation.sampling_fraction in 4 bins' style."""
    grouped: dict[str, int] = {}
    for name in names:
        stem = name.rsplit(".E", 1)[0] if ".E" in name else name
        grouped[stem] = grouped.get(stem, 0) + 1
    parts = [stem if n == 1 else f"{stem} in {n} bins" for stem, n in grouped.items()]
    return ", ".join(parts[:shown]) + (f", +{len(parts) - shown} more" if len(parts) > shown else "")
