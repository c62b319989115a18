"""The quality gate: what "trained to accuracy" means, with fixed, versioned, calibrated thresholds.

The original 3DGAN picked its best epoch by the minimum of a mean-relative-error objective and
had no pass/fail line. Here every reported number is judged against one thresholds file per
benchmark (`benchmark/thresholds/<benchmark>.json`), each limit set by `harness calibrate` from
the statistical noise floor between two independent stand-in samples. The gate is:

* the offline objective of 3dgan-reference.md section 4.4(b), per term and in total, computed
  per +-5 GeV energy bin and averaged over the bins, without the original's double counting:
  moments (M1, M2 along x, y, z), shower profiles along x, y, z, sampling fraction, and for the
  angle geometry the measured angle;
* the CaloChallenge separation power (section 6) between reference and candidate histograms of
  the sampling fraction, the hit count and the moments M1-M3 along x, y, z, per energy bin.

A metric passes when its value is finite and at most its threshold; the gate passes when every
thresholded metric does. Every energy bin compares exactly `events_per_bin` showers of each
sample, so every system is judged on the same statistics the thresholds were calibrated for.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from reference_model.errors import InputError
from reference_model.generation import Forward, generate_showers
from reference_model.physics import AXES, HIT_THRESHOLD_GEV, ShowerFeatures
from reference_model.showers import ANGLE, Showers
from reference_model.specs import ModelSpec, get_spec

THRESHOLDS_DIR = Path(__file__).with_name("thresholds")
OBJECTIVE_MOMENT_ORDERS = (1, 2)  # m = 2 in the original objective
SEPARATION_FEATURES = ("sampling_fraction", "hits") + tuple(
    f"moment_{axis}{k}" for axis in AXES for k in (1, 2, 3))
OBJECTIVE_TOTAL = "objective.total"
EMPTY_FRACTION = "empty_fraction"
PROFILE_L1 = "profile_l1"


# -- thresholds -----------------------------------------------------------------------------
LOGGED_HASH_SEPARATOR = "+sha256."  # a log records `<version>+sha256.<12 hex digits>`


def version_name(logged: object) -> str:
    """The version name of a logged `<version>+sha256.<hash>` pair ('' for none)."""
    return str(logged or "").partition(LOGGED_HASH_SEPARATOR)[0]


@dataclass(frozen=True)
class Thresholds:
    """One benchmark's quality target: how to evaluate and the limit on each gated metric."""

    benchmark: str
    name: str  # the declared version, e.g. "3dgan-quality-v1"
    sha256: str  # of the thresholds file, so a log pins the exact limits used
    smoke: bool
    submittable: bool
    geometry: str
    energy_bins_gev: tuple[tuple[float, float], ...]  # (low, high): low < E < high
    events_per_bin: int  # showers compared per energy bin, in each sample
    evaluation_events: int  # held-out showers to read so that every bin can be filled
    histogram_bins: int  # equal-population bins of the reference for separation power
    limits: dict[str, float]  # metric -> largest passing value
    hit_threshold_gev: float = HIT_THRESHOLD_GEV
    path: Optional[Path] = None
    document: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> str:
        """What a log records: the declared version and the file's hash."""
        return f"{self.name}{LOGGED_HASH_SEPARATOR}{self.sha256[:12]}"

    @property
    def evaluated_showers(self) -> int:
        return self.events_per_bin * len(self.energy_bins_gev)

    @classmethod
    def from_document(cls, document: dict, sha256: str, path: Optional[Path] = None) -> "Thresholds":
        """Parse a thresholds document; a malformed one raises InputError naming the file."""
        where = str(path) if path else "thresholds document"
        try:
            evaluation = document["evaluation"]
            limits = {name: float(entry["threshold"]) for name, entry in document["metrics"].items()}
            thresholds = cls(
                benchmark=str(document["benchmark"]), name=str(document["version"]), sha256=sha256,
                smoke=bool(document["smoke"]), submittable=bool(document["submittable"]),
                geometry=str(evaluation["geometry"]),
                energy_bins_gev=tuple((float(lo), float(hi)) for lo, hi in evaluation["energy_bins_gev"]),
                events_per_bin=int(evaluation["events_per_bin"]),
                evaluation_events=int(evaluation["evaluation_events"]),
                histogram_bins=int(evaluation["histogram_bins"]),
                hit_threshold_gev=float(evaluation.get("hit_threshold_gev", HIT_THRESHOLD_GEV)),
                limits=limits, path=path, document=document)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{where}: malformed thresholds ({type(err).__name__}: {err}); restore it "
                             "from the repository or re-run harness calibrate") from None
        if thresholds.smoke and thresholds.submittable:
            raise InputError(f"{where}: a smoke target cannot be submittable")
        if not thresholds.limits or thresholds.events_per_bin < 2 or not thresholds.energy_bins_gev:
            raise InputError(f"{where}: no metrics, energy bins or events per bin; re-run harness calibrate")
        return thresholds


def thresholds_path(benchmark: str, smoke: bool = False) -> Path:
    """The benchmark's quality target: the file of the version the registry names as its target
    (`targets` in benchmark/thresholds/registry.json), or its labelled smoke target."""
    if smoke:
        return THRESHOLDS_DIR / f"{benchmark}-smoke.json"
    registry = _registry()
    try:
        return THRESHOLDS_DIR / registry["versions"][registry["targets"][benchmark]]["file"]
    except (KeyError, TypeError) as err:
        raise InputError(f"{THRESHOLDS_DIR / 'registry.json'}: names no registered target for {benchmark} "
                         f"({type(err).__name__}: {err}); restore it from the repository") from None


def _registry() -> dict:
    path = THRESHOLDS_DIR / "registry.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: thresholds registry missing; restore it from the repository") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); restore it from the repository") from None


def _registered(registry: dict, benchmark: str, version: str) -> dict:
    """The registry's entry for `version`, which must be one of `benchmark`'s quality versions."""
    versions = registry.get("versions", {})
    entry = versions.get(version)
    if not isinstance(entry, dict) or not version.startswith(f"{benchmark}-quality-"):
        known = sorted(name for name in versions if name.startswith(f"{benchmark}-quality-"))
        raise InputError(f"--target {version}: not a registered {benchmark} quality version; registered: "
                         f"{', '.join(known) or 'none'} (benchmark/thresholds/registry.json)")
    return entry


def load_thresholds(benchmark: str, smoke: bool = False, path: Optional[Path] = None,
                    version: Optional[str] = None) -> Thresholds:
    """The versioned quality target of a benchmark (`smoke`: the labelled, non-submittable one;
    `version`: another registered version, checked against the hash the registry pins)."""
    try:
        spec = get_spec(benchmark)
    except ValueError as err:
        raise InputError(str(err)) from None
    registered = _registered(_registry(), benchmark, version) if version is not None else None
    if not path:
        path = THRESHOLDS_DIR / registered["file"] if registered else thresholds_path(benchmark, smoke)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: thresholds file missing; run `harness calibrate --benchmark {benchmark}`")
    raw = path.read_bytes()
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); restore it from the repository") from None
    thresholds = Thresholds.from_document(document, hashlib.sha256(raw).hexdigest(), path)
    if thresholds.benchmark != benchmark or thresholds.geometry != spec.geometry:
        raise InputError(f"{path}: thresholds are for {thresholds.benchmark} ({thresholds.geometry}), "
                         f"not {benchmark}")
    if thresholds.smoke != smoke:
        raise InputError(f"{path}: smoke flag is {thresholds.smoke}, expected {smoke}")
    if registered is not None and (thresholds.name != version or thresholds.sha256 != registered["sha256"]):
        raise InputError(f"{path}: not the file registered as {version} (declared {thresholds.name}, "
                         f"sha256 {thresholds.sha256[:12]}); restore it from the repository")
    return thresholds


def noise_floor_thresholds(thresholds: Thresholds) -> Thresholds:
    """The target's gate at its noise-floor limits: the target itself when it is a noise-floor
    calibration (v1, smoke), else the same gated metrics at the `floor_limit` each records (a
    v2 document's limits sit above the floor, by the reference's margin). A comparison that must
    hold at the noise floor, such as a lower precision against float32 from the same latents,
    is judged by these: on what the target gates, never within the reference's margin."""
    entries = thresholds.document.get("metrics", {})
    floors = {name: entry.get("floor_limit") for name, entry in entries.items()}
    if all(limit is None for limit in floors.values()):
        return thresholds
    if any(limit is None for limit in floors.values()):
        missing = sorted(name for name, limit in floors.items() if limit is None)
        raise InputError(f"{thresholds.path}: {missing[0]} records no floor_limit while other metrics do; "
                         "restore the thresholds file from the repository")
    return replace(thresholds, name=f"{thresholds.name}-noise-floor",
                   limits={name: float(limit) for name, limit in floors.items()})


# -- selecting what is compared -------------------------------------------------------------
def bin_label(low: float, high: float) -> str:
    return f"E{low:g}-{high:g}"


def evaluation_indices(energy_gev: np.ndarray, thresholds: Thresholds, role: str) -> list[np.ndarray]:
    """Per energy bin, the first `events_per_bin` showers (in sample order) inside the bin.

    `role` names the sample in the error raised when a bin cannot be filled.
    """
    energy = np.asarray(energy_gev)
    chosen = []
    for low, high in thresholds.energy_bins_gev:
        inside = np.flatnonzero((energy > low) & (energy < high))
        if len(inside) < thresholds.events_per_bin:
            raise InputError(
                f"{role}: {len(inside)} showers with {low:g} < E < {high:g} GeV, but the {thresholds.name} "
                f"thresholds compare {thresholds.events_per_bin} per energy bin; give more events (about "
                f"{thresholds.evaluation_events} with energies spread over the data's range)")
        chosen.append(inside[:thresholds.events_per_bin])
    return chosen


def select_evaluation_showers(showers: Showers, thresholds: Thresholds, role: str = "reference") -> Showers:
    """The showers the gate compares, bin after bin: what a generator must be conditioned on."""
    return showers.subset(np.concatenate(evaluation_indices(showers.energy_gev, thresholds, role)))


def require_fillable(source, thresholds: Thresholds, role: str) -> None:
    """Fail with one line (naming `role`, the data and the fix) unless `source` holds enough
    showers in every energy bin of `thresholds`: reads the primary energies only, so a run can be
    refused before it is launched or submitted rather than at its first evaluation."""
    from reference_model import data

    energies = []
    for file in data.list_files(source):
        path, start, stop = data.source_range(file)
        with data.EventFile(path) as events:
            energies.append(events.energies(start, stop))
    evaluation_indices(np.concatenate(energies) if energies else np.empty(0), thresholds,
                       f"{role} {data.describe_sources(source)}")


def load_evaluation_showers(source, thresholds: Thresholds, role: str = "reference",
                            block_events: int = 1000) -> Showers:
    """Read data files block by block, keeping only the showers the gate compares.

    The selection is the same as `select_evaluation_showers` on the whole data set (the first
    `events_per_bin` in-bin showers in file order), but memory holds only the selected ones,
    and reading stops as soon as every bin is full.
    """
    from reference_model import data

    n = thresholds.events_per_bin
    kept: list[list[Showers]] = [[] for _ in thresholds.energy_bins_gev]
    have = [0] * len(kept)
    for file in data.list_files(source):
        path, start, stop = data.source_range(file)
        with data.EventFile(path) as events:
            stop = events.n_events if stop is None else min(stop, events.n_events)
            for first in range(start, stop, block_events):
                block = events.showers(first, min(first + block_events, stop))
                _check_geometry(block, thresholds, f"{role} {path}")
                for i, (low, high) in enumerate(thresholds.energy_bins_gev):
                    inside = np.flatnonzero((block.energy_gev > low) & (block.energy_gev < high))[:n - have[i]]
                    if len(inside):
                        kept[i].append(block.subset(inside))
                        have[i] += len(inside)
                if min(have) >= n:
                    break
        if min(have) >= n:
            break
    parts = [part for bin_parts in kept for part in bin_parts]
    named = f"{role} {data.describe_sources(source)}"
    if not parts:
        evaluation_indices(np.empty(0), thresholds, named)  # raises the bin error
    showers = Showers(np.concatenate([p.ecal_gev for p in parts]),
                      np.concatenate([p.energy_gev for p in parts]),
                      None if parts[0].theta_rad is None else np.concatenate([p.theta_rad for p in parts]))
    return select_evaluation_showers(showers, thresholds, named)


# -- metrics --------------------------------------------------------------------------------
def _relative(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """|ref - cand| / |ref| elementwise; cells where the reference is exactly 0 are left out (NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference != 0, np.abs(reference - candidate) / np.abs(reference), np.nan)


def objective_terms(reference: ShowerFeatures, candidate: ShowerFeatures, with_angle: bool) -> dict[str, float]:
    """Section 4.4(b) for one energy bin: moments, profiles, sampling fraction (and angle).

    moments: mean over k in {1, 2} of the mean over x, y, z of |<M_k ref> - <M_k cand>| / <M_k ref>.
    profiles: mean over x, y, z of the mean over cells of the relative error of the mean profile
    (cells where the reference mean is 0 are skipped: the relative error is undefined there).
    sampling_fraction: |<SF ref> - <SF cand>| / <SF ref>.
    angle: mean over showers of |theta_meas ref - theta_meas cand| / theta_meas ref, pairing
    showers by the rank of their angle label (the identity for a generator conditioned on the
    reference's own angles, as in the original).
    """
    orders = [k - 1 for k in OBJECTIVE_MOMENT_ORDERS]
    moment_errors = np.stack([
        _relative(reference.moments[a][:, orders].mean(axis=0), candidate.moments[a][:, orders].mean(axis=0))
        for a in AXES])  # (axes, orders)
    profile_errors = [np.nanmean(_relative(reference.shapes[a].mean(axis=0), candidate.shapes[a].mean(axis=0)))
                      for a in AXES]
    terms = {
        "moments": float(np.mean(moment_errors.mean(axis=0))),
        "profiles": float(np.mean(profile_errors)),
        "sampling_fraction": float(_relative(np.mean(reference.sampling_fraction),
                                             np.mean(candidate.sampling_fraction))),
    }
    if with_angle:
        ref_order = np.argsort(reference.theta_rad, kind="stable")
        cand_order = np.argsort(candidate.theta_rad, kind="stable")
        terms["angle"] = float(np.mean(_relative(reference.measured_angle[ref_order],
                                                 candidate.measured_angle[cand_order])))
    return terms


def profile_l1_distance(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Energy-weighted profile distance: half the L1 distance between the two mean profiles,
    each normalised to unit sum (0 identical, 1 disjoint). A cell counts by the energy it holds,
    so the lateral tails (1e-4 of the core) weigh what they deposit, not as much as the core."""
    ref, cand = reference.mean(axis=0), candidate.mean(axis=0)
    ref_total, cand_total = ref.sum(), cand.sum()
    if ref_total <= 0 or cand_total <= 0:
        return 1.0
    return float(0.5 * np.abs(ref / ref_total - cand / cand_total).sum())


def separation_power(reference: np.ndarray, candidate: np.ndarray, bins: int) -> float:
    """CaloChallenge separation power 1/2 sum (h1 - h2)^2 / (h1 + h2) of normalised histograms.

    The bins are the reference's quantiles (`bins` of equal reference population between its
    minimum and maximum) plus an underflow and an overflow bin the reference leaves empty, so
    the measure needs no hand-set ranges, anything outside the reference range still counts,
    and it is 0 for identical samples and 1 for disjoint ones.
    """
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    inner = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    low, high = reference.min(), reference.max()

    def histogram(values: np.ndarray) -> np.ndarray:
        index = np.searchsorted(inner, values, side="right") + 1
        index = np.where(values < low, 0, np.where(values > high, len(inner) + 2, index))
        return np.bincount(index, minlength=len(inner) + 3) / len(values)

    h_ref, h_cand = histogram(reference), histogram(candidate)
    total = h_ref + h_cand
    filled = total > 0
    return float(0.5 * np.sum((h_ref[filled] - h_cand[filled]) ** 2 / total[filled]))


@dataclass(frozen=True)
class DistributionShift:
    """How a candidate's distribution of one feature differs from the reference's, in the two
    numbers a physicist asks for first: where its centre sits and how wide it is. A separation
    power says only that they differ; a shower one layer too deep and one with half the
    event-to-event fluctuation need different fixes."""

    mean_difference: float  # candidate mean - reference mean, in the feature's units
    reference_sd: float
    spread_ratio: float  # candidate sd / reference sd

    @property
    def standardised_difference(self) -> float:
        """The mean difference in units of the reference's standard deviation."""
        if self.reference_sd > 0:
            return self.mean_difference / self.reference_sd
        return 0.0 if self.mean_difference == 0 else math.copysign(math.inf, self.mean_difference)

    def describe(self) -> str:
        return (f"mean {self.mean_difference:+.3g} ({self.standardised_difference:+.2f} sd of the reference), "
                f"spread {self.spread_ratio:.2f}x the reference's")


def distribution_shift(reference: np.ndarray, candidate: np.ndarray) -> DistributionShift:
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    reference_sd = float(reference.std())
    candidate_sd = float(candidate.std())
    spread = candidate_sd / reference_sd if reference_sd > 0 else (1.0 if candidate_sd == 0 else math.inf)
    return DistributionShift(float(candidate.mean() - reference.mean()), reference_sd, spread)


def separation_features(features: ShowerFeatures) -> dict[str, np.ndarray]:
    """The per-shower quantities whose distributions are compared."""
    out = {"sampling_fraction": features.sampling_fraction, "hits": features.hits.astype(np.float64)}
    for axis in AXES:
        for k in (1, 2, 3):
            out[f"moment_{axis}{k}"] = features.moments[axis][:, k - 1]
    return out


def compute_metrics(reference: ShowerFeatures, candidate: ShowerFeatures,
                    thresholds: Thresholds) -> dict[str, float]:
    """Every metric of the gate, by name. Both samples hold `events_per_bin` showers per energy
    bin, bin after bin, as `select_evaluation_showers` orders them."""
    with_angle = thresholds.geometry == ANGLE
    n = thresholds.events_per_bin
    metrics: dict[str, float] = {}
    per_bin_terms = []
    for i, (low, high) in enumerate(thresholds.energy_bins_gev):
        in_bin = np.arange(i * n, (i + 1) * n)
        ref, cand = reference.subset(in_bin), candidate.subset(in_bin)
        per_bin_terms.append(objective_terms(ref, cand, with_angle))
        for axis in AXES:
            per_bin_terms[-1][f"{PROFILE_L1}.{axis}"] = profile_l1_distance(ref.shapes[axis],
                                                                           cand.shapes[axis])
        ref_values, cand_values = separation_features(ref), separation_features(cand)
        for feature in SEPARATION_FEATURES:
            metrics[f"separation.{feature}.{bin_label(low, high)}"] = separation_power(
                ref_values[feature], cand_values[feature], thresholds.histogram_bins)
    terms = [term for term in per_bin_terms[0] if not term.startswith(PROFILE_L1)]
    for term in terms:
        metrics[f"objective.{term}"] = float(np.mean([t[term] for t in per_bin_terms]))
    metrics[OBJECTIVE_TOTAL] = float(sum(metrics[f"objective.{term}"] for term in terms))
    for axis in AXES:  # reported beside the gate: the energy-weighted view of the profiles
        metrics[f"{PROFILE_L1}.{axis}"] = float(np.mean([t[f"{PROFILE_L1}.{axis}"] for t in per_bin_terms]))
    metrics[PROFILE_L1] = float(np.mean([metrics[f"{PROFILE_L1}.{axis}"] for axis in AXES]))
    metrics[EMPTY_FRACTION] = float(np.mean(candidate.ecal_sum <= 0))
    return metrics


def measure(reference: Showers, candidate: Showers, thresholds: Thresholds
            ) -> tuple[dict[str, float], ShowerFeatures, ShowerFeatures]:
    """Select each sample's evaluation showers, compute their features and every metric."""
    _check_geometry(reference, thresholds, "reference")
    _check_geometry(candidate, thresholds, "candidate")
    ref = select_evaluation_showers(reference, thresholds, "reference")
    cand = select_evaluation_showers(candidate, thresholds, "candidate")
    ref_features = ShowerFeatures.of(ref, thresholds.hit_threshold_gev)
    cand_features = ShowerFeatures.of(cand, thresholds.hit_threshold_gev)
    return compute_metrics(ref_features, cand_features, thresholds), ref_features, cand_features


# -- the report -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    threshold: Optional[float]  # None: reported, not gated

    @property
    def gated(self) -> bool:
        return self.threshold is not None

    @property
    def passed(self) -> Optional[bool]:
        if self.threshold is None:
            return None
        return bool(math.isfinite(self.value) and self.value <= self.threshold)


@dataclass
class QualityReport:
    """Every metric with its threshold and verdict; `.passed` only when every gated one passes."""

    benchmark: str
    thresholds_version: str
    smoke: bool
    submittable: bool
    events_per_bin: int
    energy_bins_gev: tuple[tuple[float, float], ...]
    results: list[MetricResult]
    reference: Optional[ShowerFeatures] = field(default=None, repr=False)  # the compared showers,
    candidate: Optional[ShowerFeatures] = field(default=None, repr=False)  # for plots

    @property
    def passed(self) -> bool:
        gated = [r for r in self.results if r.gated]
        return bool(gated) and all(r.passed for r in gated)

    @property
    def objective(self) -> float:
        return self.value(OBJECTIVE_TOTAL)

    def value(self, name: str) -> float:
        return next(r.value for r in self.results if r.name == name)

    def failures(self) -> list[MetricResult]:
        return [r for r in self.results if r.gated and not r.passed]

    def shift(self, name: str) -> Optional[DistributionShift]:
        """The mean and spread behind a separation power `separation.<feature>.<bin>`, from the
        compared showers; None for other metrics or a report without its showers."""
        if not name.startswith("separation.") or self.reference is None or self.candidate is None:
            return None
        _, feature, label = name.split(".", 2)
        labels = [bin_label(low, high) for low, high in self.energy_bins_gev]
        if label not in labels:
            return None
        n = self.events_per_bin
        in_bin = np.arange(labels.index(label) * n, (labels.index(label) + 1) * n)
        return distribution_shift(separation_features(self.reference.subset(in_bin))[feature],
                                  separation_features(self.candidate.subset(in_bin))[feature])

    def failure_shifts(self) -> list[tuple[str, DistributionShift]]:
        """Each failing separation power with what differs: a shifted centre or a wrong spread."""
        shifts = ((r.name, self.shift(r.name)) for r in self.failures())
        return [(name, shift) for name, shift in shifts if shift is not None]

    def failed_summary(self, limit: int = 3) -> str:
        gated = sum(r.gated for r in self.results)
        failed = self.failures()
        if not failed:
            return f"all {gated} checks pass"
        shown = ", ".join(f"{r.name} {r.value:.4g} > {r.threshold:.4g}" for r in failed[:limit])
        more = f", +{len(failed) - limit} more" if len(failed) > limit else ""
        return f"{len(failed)} of {gated} checks fail: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        def finite(x: Optional[float]) -> Optional[float]:
            return x if x is None or math.isfinite(x) else None

        return {
            "benchmark": self.benchmark, "thresholds": self.thresholds_version, "smoke": self.smoke,
            "submittable": self.submittable, "passed": self.passed, "objective": finite(self.objective),
            "events_per_bin": self.events_per_bin,
            "energy_bins_gev": [list(b) for b in self.energy_bins_gev],
            "failed": [r.name for r in self.failures()],
            "shifts": {name: {"mean_difference": finite(shift.mean_difference),
                              "reference_sd": finite(shift.reference_sd), "spread_ratio": finite(shift.spread_ratio)}
                       for name, shift in self.failure_shifts()},
            "metrics": {r.name: {"value": finite(r.value), "threshold": r.threshold, "passed": r.passed}
                        for r in self.results},
        }


def _check_geometry(showers: Showers, thresholds: Thresholds, role: str) -> None:
    if showers.geometry != thresholds.geometry:
        raise InputError(f"{role}: {showers.geometry}-geometry showers {showers.ecal_gev.shape[1:]}, but "
                         f"{thresholds.benchmark} needs {thresholds.geometry} geometry")
    if thresholds.geometry == ANGLE and showers.theta_rad is None:
        raise InputError(f"{role}: angle-geometry showers without incidence angles (theta)")


def evaluate(reference: Showers, candidate: Showers, thresholds: Thresholds) -> QualityReport:
    """Judge candidate showers against reference showers: every metric against its threshold."""
    metrics, ref_features, cand_features = measure(reference, candidate, thresholds)
    missing = sorted(set(thresholds.limits) - set(metrics))
    if missing:
        raise InputError(f"{thresholds.path}: thresholds name unknown metrics {missing[:3]}; "
                         "the file does not match this version of the suite")
    results = [MetricResult(name, metrics[name], thresholds.limits.get(name))
               for name in sorted(metrics, key=display_order)]
    return QualityReport(benchmark=thresholds.benchmark, thresholds_version=thresholds.version,
                         smoke=thresholds.smoke, submittable=thresholds.submittable,
                         events_per_bin=thresholds.events_per_bin,
                         energy_bins_gev=thresholds.energy_bins_gev, results=results,
                         reference=ref_features, candidate=cand_features)


def display_order(name: str) -> tuple:
    """Objective terms then their total, separation powers by energy bin then feature, the rest."""
    if name.startswith("objective."):
        return (0, name == OBJECTIVE_TOTAL, 0.0, 0, name)
    if name.startswith("separation."):
        _, feature, label = name.split(".", 2)
        low = float(label[1:].split("-")[0])
        rank = SEPARATION_FEATURES.index(feature) if feature in SEPARATION_FEATURES else len(SEPARATION_FEATURES)
        return (1, False, low, rank, name)
    return (2, False, 0.0, 0, name)


def evaluate_generator(forward: Forward, spec: ModelSpec, reference: Showers, thresholds: Thresholds,
                       seed: int = 0, batch_size: int = 128) -> QualityReport:
    """Generate-then-gate, written once for every check of a generator: the trainer's
    per-evaluation check and `harness validate` (a Keras model, as `partial(model, training=False)`)
    and each inference precision's target and paired checks (a `benchmark.precision` runner).

    Showers are generated conditioned on the same (E, theta) as the reference's evaluation
    showers and judged against them. Only the showers the gate compares are generated
    (`thresholds.evaluated_showers`, e.g. 5 bins x 200 for 3dgan).
    """
    compared = select_evaluation_showers(reference, thresholds, "reference")
    generated = generate_showers(spec, forward, compared.energy_gev, compared.theta_rad, seed=seed,
                                 batch_size=batch_size)
    # Label the candidates with the exact conditions they were generated from (the generator
    # sees float32 copies), so both samples fall into the same energy bins.
    candidate = Showers(generated.ecal_gev, compared.energy_gev, compared.theta_rad)
    return evaluate(compared, candidate, thresholds)
