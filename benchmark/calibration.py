"""Calibrate the quality thresholds from the statistical noise floor, never by guessing.

A perfect generator produces showers statistically identical to the reference, so what it
scores on each metric is pure sampling noise. That noise floor is measured directly: every
metric of the gate is computed between two independent stand-in samples of the evaluation
size, over R repetitions. Each threshold is then set so a perfect generator passes the whole
gate with probability >= 99%:

* Every metric is non-negative and built from squared or absolute fluctuations; for equal
  samples the separation power is chi-square/(2n), i.e. Gamma distributed, and sums of
  |Gaussian| terms are close to Gamma too. So the floor is modelled as a Gamma distribution
  fitted by moments, its variance taken at the 95% upper confidence bound (only R values).
* With K gated metrics, each threshold is that Gamma's 1 - 0.01/K quantile (Bonferroni), so
  P(any metric of a perfect generator fails) <= 1%.
* A threshold is never below 1.25 x the largest floor value seen, in case the fit is poor.

Then R fresh pairs (new seeds) are run through the real gate with the new thresholds and the
pass count is recorded, so the file carries its own check.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from benchmark import quality
from benchmark.provenance import SUITE_ROOT, suite_commit
from reference_model.atomic_files import write_text_atomic
from reference_model.errors import InputError
from reference_model.physics import HIT_THRESHOLD_GEV, energy_bin_edges
from reference_model.showers import Showers
from reference_model.specs import get_spec

PASS_PROBABILITY = 0.99
VARIANCE_CONFIDENCE = 0.95
MARGIN_OVER_MAX = 1.25
MIN_REPETITIONS = 20
SEED_BASE = 100_000  # calibration seeds stay clear of the small seeds data sets use
BIN_FILL_PROBABILITY = 0.999  # evaluation_events fills every bin with this probability
NOT_GATED = (quality.EMPTY_FRACTION,)  # zero on any real sample: no floor to calibrate


@dataclass(frozen=True)
class EvaluationDesign:
    """What the gate compares for a benchmark; calibrated once, then frozen in its file."""

    energy_centres_gev: tuple[float, ...]  # 4.4(b) energy bins, +-5 GeV around each
    events_per_bin: int
    data_energy_range_gev: tuple[float, float]  # spectrum of the data the held-out events come from
    histogram_bins: int = 10


# Fixed: the objective's bins [50, 100, 200, 300, 400]; angle: [100, 200, 300, 400] (full set).
# 200 (fixed) and 100 (angle) showers per bin keep one evaluation to ~1,000 and ~400 generated
# showers: seconds on a CPU for fixed, under a minute for the 10x costlier angle generator.
DESIGNS = {
    "3dgan": EvaluationDesign((50.0, 100.0, 200.0, 300.0, 400.0), 200, (10.0, 500.0)),
    "3dgan-angle": EvaluationDesign((100.0, 200.0, 300.0, 400.0), 100, (2.0, 500.0)),
}


def events_to_fill_bins(design: EvaluationDesign) -> int:
    """Held-out showers to read so that, for a flat spectrum, every bin has `events_per_bin`
    showers with probability BIN_FILL_PROBABILITY (binomial per bin, union bound over bins)."""
    from scipy import stats

    low, high = design.data_energy_range_gev
    p = 2 * 5.0 / (high - low)
    per_bin_miss = (1 - BIN_FILL_PROBABILITY) / len(design.energy_centres_gev)
    n = design.events_per_bin
    while stats.binom.cdf(design.events_per_bin - 1, n, p) > per_bin_miss:
        n += max(1, n // 100)
    return int(math.ceil(n / 500.0) * 500)


def provisional_thresholds(benchmark: str, events_per_bin: Optional[int] = None) -> quality.Thresholds:
    """The evaluation design with no limits yet: what the noise floor is measured under."""
    design = DESIGNS[benchmark]
    if events_per_bin is not None:
        design = EvaluationDesign(design.energy_centres_gev, events_per_bin, design.data_energy_range_gev,
                                  design.histogram_bins)
    return quality.Thresholds(
        benchmark=benchmark, name="uncalibrated", sha256="", smoke=False, submittable=False,
        geometry=get_spec(benchmark).geometry,
        energy_bins_gev=tuple(energy_bin_edges(design.energy_centres_gev)),
        events_per_bin=design.events_per_bin, evaluation_events=events_to_fill_bins(design),
        histogram_bins=design.histogram_bins, limits={}, hit_threshold_gev=HIT_THRESHOLD_GEV)


def float32_interior(low: float, high: float) -> tuple[float, float]:
    """The smallest and largest float32 strictly inside (low, high): energies drawn between them
    stay inside the bin once stored as float32 (a draw within half a float32 step of an edge
    would round onto it and fall out of the bin, which the gate excludes with low < E < high)."""
    return (float(np.nextafter(np.float32(low), np.float32(np.inf))),
            float(np.nextafter(np.float32(high), np.float32(-np.inf))))


def standin_sample(thresholds: quality.Thresholds, seed: int, theta_shift_deg: float = 0.0) -> Showers:
    """`events_per_bin` stand-in showers per energy bin, energies flat inside each bin (as the
    in-bin events of a flat spectrum are), bin after bin. `theta_shift_deg` (angle geometry)
    simulates every shower at an incidence angle that much larger, its label unchanged."""
    from reference_model.simulator import DEFAULT_THETA_RANGE_DEG, simulate

    theta_range = tuple(t + theta_shift_deg for t in DEFAULT_THETA_RANGE_DEG)
    parts = [simulate(thresholds.events_per_bin, thresholds.geometry, seed=seed * 100 + i,
                      energy_range=float32_interior(low, high), theta_range_deg=theta_range)
             for i, (low, high) in enumerate(thresholds.energy_bins_gev)]
    theta = None if parts[0].theta_rad is None else \
        np.concatenate([p.theta_rad for p in parts]) - np.float32(np.radians(theta_shift_deg))
    return Showers(np.concatenate([p.ecal_gev for p in parts]),
                   np.concatenate([p.energy_gev for p in parts]), theta)


def noise_floor(thresholds: quality.Thresholds, repetitions: int, seed: int,
                progress: bool = True) -> dict[str, np.ndarray]:
    """Every metric between two independent stand-in samples, for each repetition."""
    from reference_model.progress import Progress

    meter = Progress(repetitions, f"noise floor {thresholds.benchmark}", "pairs") if progress else None
    values: dict[str, list[float]] = {}
    for rep in range(repetitions):
        reference = standin_sample(thresholds, SEED_BASE + seed + 2 * rep)
        candidate = standin_sample(thresholds, SEED_BASE + seed + 2 * rep + 1)
        metrics, _, _ = quality.measure(reference, candidate, thresholds)
        for name, value in metrics.items():
            values.setdefault(name, []).append(value)
        if meter:
            meter.update()
    return {name: np.asarray(v) for name, v in values.items()}


def threshold_from_floor(values: np.ndarray, gated_metrics: int) -> tuple[float, dict]:
    """The rule of the module docstring: Gamma quantile 1 - 0.01/K, at least 1.25 x the max."""
    from scipy import stats

    n = len(values)
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    std_upper = std * math.sqrt((n - 1) / stats.chi2.ppf(1 - VARIANCE_CONFIDENCE, n - 1))
    quantile = 1 - (1 - PASS_PROBABILITY) / gated_metrics
    if mean > 0 and std_upper > 0:
        shape, scale = (mean / std_upper) ** 2, std_upper ** 2 / mean
        gamma_bound = float(stats.gamma.ppf(quantile, shape, scale=scale))
    else:
        gamma_bound = 0.0
    margin_bound = MARGIN_OVER_MAX * float(np.max(values))
    threshold = round_up(max(gamma_bound, margin_bound))
    floor = {"mean": significant(mean), "std": significant(std), "min": significant(float(np.min(values))),
             "max": significant(float(np.max(values))), "values": [significant(float(v)) for v in values]}
    rule = (f"gamma_q{quantile:.6f}" if gamma_bound >= margin_bound else f"{MARGIN_OVER_MAX}x_max")
    return threshold, {"threshold": threshold, "set_by": rule, "gamma_bound": significant(gamma_bound),
                       "margin_bound": significant(margin_bound), "noise_floor": floor}


def significant(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x


def round_up(x: float, digits: int = 3) -> float:
    """Round up to `digits` significant digits (a readable limit that is never below the rule)."""
    if x <= 0 or not math.isfinite(x):
        return x
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return float(f"{math.ceil(x / scale - 1e-9) * scale:.{digits}g}")


def suite_provenance() -> dict:
    """The code and the simulator a calibration ran with."""
    simulator = SUITE_ROOT / "reference_model" / "simulator.py"
    return {"suite_commit": suite_commit(),
            "simulator_sha256": hashlib.sha256(simulator.read_bytes()).hexdigest() if simulator.is_file() else None}


def calibrate(benchmark: str, version: str, repetitions: int = MIN_REPETITIONS,
              events_per_bin: Optional[int] = None, seed: int = 0, verify_repetitions: Optional[int] = None,
              command: str = "", progress: bool = True) -> dict:
    """Measure the noise floor, set every threshold, verify on fresh pairs: the thresholds document."""
    if benchmark not in DESIGNS:
        raise InputError(f"--benchmark {benchmark!r}: choose one of {', '.join(DESIGNS)}")
    if repetitions < MIN_REPETITIONS:
        raise InputError(f"--repetitions {repetitions}: at least {MIN_REPETITIONS} are needed to "
                         "estimate a noise floor")
    if events_per_bin is not None and events_per_bin < 10:
        raise InputError(f"--events gives {events_per_bin} showers per energy bin; use at least 10 per bin")
    start = time.monotonic()
    design = provisional_thresholds(benchmark, events_per_bin)
    floors = noise_floor(design, repetitions, seed, progress)
    gated = sorted((name for name in floors if name not in NOT_GATED), key=quality.display_order)
    metrics = {name: threshold_from_floor(floors[name], len(gated))[1] for name in gated}
    document = {
        "benchmark": benchmark,
        "version": version,
        "smoke": False,
        "submittable": True,
        "description": "Calibrated quality target: every listed metric must be at most its threshold. "
                       "Thresholds set by `harness calibrate` from the noise floor between independent "
                       "stand-in samples (see benchmark/thresholds/CALIBRATION.md).",
        "evaluation": {
            "geometry": design.geometry,
            "energy_bins_gev": [list(b) for b in design.energy_bins_gev],
            "events_per_bin": design.events_per_bin,
            "evaluation_events": design.evaluation_events,
            "histogram_bins": design.histogram_bins,
            "hit_threshold_gev": design.hit_threshold_gev,
            "objective_moment_orders": list(quality.OBJECTIVE_MOMENT_ORDERS),
        },
        "calibration": {
            "command": command, "date": dt.date.today().isoformat(), **suite_provenance(),
            "repetitions": repetitions, "seed": seed,
            "samples": "two independent stand-in samples (reference_model.simulator) per repetition, "
                       f"{design.events_per_bin} showers per energy bin each",
            "pass_probability_target": PASS_PROBABILITY, "gated_metrics": len(gated),
            "rule": (f"threshold = max(Gamma(mean, var_up) quantile 1 - {1 - PASS_PROBABILITY:g}/K, "
                     f"{MARGIN_OVER_MAX} x max of the floor), rounded up to 3 significant digits; Gamma "
                     f"fitted by moments with the variance at its {VARIANCE_CONFIDENCE:.0%} upper "
                     f"confidence bound; K = {len(gated)} gated metrics (Bonferroni)"),
        },
        "metrics": metrics,
    }
    thresholds = quality.Thresholds.from_document(document, sha256="unwritten")
    verify = verify_repetitions if verify_repetitions is not None else repetitions
    document["calibration"]["verification"] = verify_on_fresh_pairs(thresholds, verify, seed, progress)
    document["calibration"]["seconds"] = round(time.monotonic() - start, 1)
    return document


def verify_on_fresh_pairs(thresholds: quality.Thresholds, repetitions: int, seed: int,
                          progress: bool = True) -> dict:
    """Run pairs with seeds the calibration never used through the real gate; count passes."""
    from reference_model.progress import Progress

    meter = Progress(repetitions, f"verify {thresholds.benchmark}", "pairs") if progress and repetitions else None
    passed, worst = 0, 0.0
    failures: dict[str, int] = {}
    offset = SEED_BASE + seed + 10_000
    for rep in range(repetitions):
        report = quality.evaluate(standin_sample(thresholds, offset + 2 * rep),
                                  standin_sample(thresholds, offset + 2 * rep + 1), thresholds)
        passed += report.passed
        worst = max(worst, max(r.value / r.threshold for r in report.results if r.gated and r.threshold > 0))
        for r in report.failures():
            failures[r.name] = failures.get(r.name, 0) + 1
        if meter:
            meter.update()
    return {"repetitions": repetitions, "passed": passed, "worst_value_over_threshold": significant(worst),
            "failures": failures}


def write_thresholds(document: dict, path: Path) -> Path:
    """Write atomically (temp file, then rename), so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=1)
    # One line per list of numbers (the floor values, the bin edges) keeps the file readable.
    text = re.sub(r"\[\s+([^\[\]{}\"]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return write_text_atomic(path, text + "\n")


def summary_rows(document: dict) -> list[tuple]:
    """One row per gated metric: name, floor mean, floor max, threshold, rule that set it."""
    return [(name, entry["noise_floor"]["mean"], entry["noise_floor"]["max"], entry["threshold"], entry["set_by"])
            for name, entry in document["metrics"].items()]
