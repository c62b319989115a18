"""What a target lets through: two independent stand-in samples judged against each other, the
second distorted in a known way (an energy-scale error, showers starting deeper, for the angle
benchmark showers at the wrong incidence angle). A target that means physics passes the
undistorted pair and fails a 5% scale error and a one-layer shift; CALIBRATION.md records the
table this module makes for every target version.

The pairs' seeds are disjoint from every calibration, campaign and hold-test seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from benchmark import quality
from benchmark.calibration import standin_sample
from reference_model.showers import FIXED, Showers

PAIRS = ((7, 8), (9, 10))  # (reference seed, candidate seed)


@dataclass(frozen=True)
class Distortion:
    """One known error of a candidate: `kind` 'none', 'scale' (every cell x amount), 'deeper'
    (every shower `amount` layers deeper) or 'angle' (`amount` degrees larger incidence angle)."""

    kind: str
    amount: float = 0.0

    @property
    def label(self) -> str:
        return {"none": "unchanged", "scale": f"every cell x{self.amount:g}",
                "deeper": f"every shower {self.amount:g} layer{'s' if self.amount != 1 else ''} deeper",
                "angle": f"every shower at +{self.amount:g} deg incidence"}[self.kind]


def distortions(geometry: str) -> list[Distortion]:
    """The table's rows: the rules' energy scales and depth shifts, and angle shifts for angle."""
    rows = [Distortion("none"), *(Distortion("scale", f) for f in (1.05, 1.1, 1.2)),
            *(Distortion("deeper", n) for n in (1, 2, 3))]
    return rows if geometry == FIXED else rows + [Distortion("angle", a) for a in (2.0, 5.0, 10.0, 15.0)]


def deeper(showers: Showers, layers: int) -> Showers:
    """Every shower moved `layers` layers deeper (the first layers empty, the last ones lost)."""
    shifted = np.zeros_like(showers.ecal_gev)
    shifted[..., layers:] = showers.ecal_gev[..., :-layers]
    return Showers(shifted, showers.energy_gev, showers.theta_rad)


def candidate_sample(thresholds: quality.Thresholds, seed: int, distortion: Distortion) -> Showers:
    if distortion.kind == "angle":
        return standin_sample(thresholds, seed, theta_shift_deg=distortion.amount)
    showers = standin_sample(thresholds, seed)
    if distortion.kind == "scale":
        return Showers(showers.ecal_gev * np.float32(distortion.amount), showers.energy_gev, showers.theta_rad)
    if distortion.kind == "deeper":
        return deeper(showers, int(distortion.amount))
    return showers


@dataclass(frozen=True)
class Row:
    distortion: Distortion
    failures: tuple[tuple[str, ...], ...]  # per pair, the gated metrics it fails

    @property
    def passes(self) -> int:
        return sum(not f for f in self.failures)


def lets_through(thresholds: quality.Thresholds, pairs: Sequence[tuple[int, int]] = PAIRS,
                 rows: Sequence[Distortion] = ()) -> list[Row]:
    """Each distortion judged on every pair under `thresholds`."""
    references = {a: standin_sample(thresholds, a) for a, _ in pairs}
    table = []
    for distortion in rows or distortions(thresholds.geometry):
        failures = tuple(tuple(r.name for r in quality.evaluate(references[a], candidate_sample(
            thresholds, b, distortion), thresholds).failures()) for a, b in pairs)
        table.append(Row(distortion, failures))
    return table


def failing_summary(names: Sequence[str], shown: int = 3) -> str:
    """'objective.sampling_fraction, separation.sampling_fraction in 4 bins' style."""
    grouped: dict[str, int] = {}
    for name in names:
        stem = name.rsplit(".E", 1)[0] if ".E" in name else name
        grouped[stem] = grouped.get(stem, 0) + 1
    parts = [stem if n == 1 else f"{stem} in {n} bins" for stem, n in grouped.items()]
    return ", ".join(parts[:shown]) + (f", +{len(parts) - shown} more" if len(parts) > shown else "")
