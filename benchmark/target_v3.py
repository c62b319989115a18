"""v3: a target the shipped reference holds on fresh evaluation samples.

The rule is CALIBRATION.md's "v3 limits: the rule", fixed before any study arm reached its
window; the variable-angle benchmark's target applies the same rule to its own campaign
("3dgan-angle: the campaign's recipe, budget and target rule", fixed before any angle curve).
This module only applies it; `RULES` holds what differs per benchmark. Per gated metric the
limit is the largest of

* MARGIN x its largest value over the reference's evaluations in the rule's window,
* MARGIN x its largest value for that generator on the 20 calibration seeds (a hold-test
  record, `benchmark.hold_test`): the evaluation sample's own noise, which v2's margin lacked;
  for 3dgan-angle, by the rule's revision of 2026-12-06 (before its window), v1's tolerance
  bound on those 20 values instead (`calibration.threshold_from_floor` over the K gated
  metrics), since 1.1 x the largest of 20 did not cover a fresh seed's tail on all metrics at once
  for the fixed benchmark's release candidate,
* its noise-floor limit,

rounded up to 3 significant digits, and for 3dgan never above v2's limit where v2 gates the
metric (a reference that then fails the hold test is the recipe's failure, recorded, not
loosened). Any metric on which the reference spreads over more than SPREAD_LIMIT across the
window is reported, not gated.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

import numpy as np

from benchmark import quality
from benchmark.calibration import MARGIN_OVER_MAX, round_up, significant, suite_provenance, threshold_from_floor
from benchmark.hold_test import CALIBRATION_SEEDS, VALIDATION_SEEDS, HoldTest
from benchmark.recipe import ANGLE_BENCHMARK, ANGLE_BUDGET_SAMPLES, reproduction_samples
from benchmark.recipe_study import FINAL_WINDOW, GATING_VERSION
from benchmark.reference_target import SEPARATION_PREFIX, V2_GATED, V2_GATED_PER_BIN
from reference_model.errors import InputError

MARGIN = 1.1
SPREAD_LIMIT = 3.0  # max / min over the window above this: the metric is too unsteady to gate
ADDED_PER_BIN = ("moment_x2", "moment_y2", "moment_z2")  # shower widths, per energy bin
GENERATORS = ("raw", "ema")


@dataclass(frozen=True)
class Rule:
    """What the v3 rule takes from one benchmark: the target it writes, the target the calibration
    seeds are judged against, where the noise floors come from, the window, the fresh seeds, the
    gated metrics (whole-sample names, then groups of per-energy-bin separation features, each
    group listed bin by bin), the target a limit may never be looser than (None: none) and
    whether the calibration seeds' bound is v1's tolerance bound (else MARGIN x their max)."""

    benchmark: str
    release: str
    judged_against: str
    floors_from: str
    window: tuple[int, int]  # (low, high] in samples
    window_evaluations: int
    calibration_seeds: tuple[int, ...]
    validation_seeds: tuple[int, ...]
    gated_whole: tuple[str, ...]
    gated_per_bin: tuple[tuple[str, ...], ...]
    never_looser_than: Optional[str]
    calibration_tolerance: bool = False

    @property
    def rc_version(self) -> str:
        return f"{self.release}-rc"

    @property
    def short(self) -> str:
        """The released target's short name ("v3", "v2"), as files and messages use it."""
        return short_version(self.release)


def short_version(version: str) -> str:
    """'3dgan-quality-v3' -> 'v3'."""
    return version.rpartition("-quality-")[2]


RULES = {
    "3dgan": Rule("3dgan", "3dgan-quality-v3", GATING_VERSION, "3dgan-quality-v1", FINAL_WINDOW, 10,
                  CALIBRATION_SEEDS, VALIDATION_SEEDS, V2_GATED, (V2_GATED_PER_BIN, ADDED_PER_BIN),
                  never_looser_than=GATING_VERSION),
    # the last quarter of the angle budget: evaluations at 75,000 (one interval of 5,000 past
    # 70,000) to 100,000, six of them; the angle noise-floor target (v1) is both the target its
    # calibration seeds are judged against and the floors
    ANGLE_BENCHMARK: Rule(ANGLE_BENCHMARK, "3dgan-angle-quality-v2", "3dgan-angle-quality-v1",
                          "3dgan-angle-quality-v1", (ANGLE_BUDGET_SAMPLES * 7 // 10, ANGLE_BUDGET_SAMPLES), 6,
                          tuple(range(4101, 4121)), tuple(range(5101, 5121)),
                          ("objective.sampling_fraction", "objective.profiles", "objective.moments",
                           "objective.angle"),
                          (("sampling_fraction", "hits", "moment_x1", "moment_y1", "moment_z1",
                            "moment_x2", "moment_y2", "moment_z2"),),
                          never_looser_than=None, calibration_tolerance=True),
}


def rule_for(benchmark: str) -> Rule:
    try:
        return RULES[benchmark]
    except KeyError:
        raise InputError(f"no hold-tested target rule for {benchmark!r}; known: {', '.join(RULES)}") from None


def rc_version(benchmark: str) -> str:
    return rule_for(benchmark).rc_version


def proposed_metrics(thresholds: quality.Thresholds) -> list[str]:
    """The rule's gated metrics for `thresholds`' benchmark and energy bins (3dgan: v2's plus the
    second-moment separations)."""
    rule = rule_for(thresholds.benchmark)
    per_bin = [f"{SEPARATION_PREFIX}{feature}.{quality.bin_label(low, high)}"
               for group in rule.gated_per_bin for low, high in thresholds.energy_bins_gev for feature in group]
    return [*rule.gated_whole, *per_bin]


def window_values(curve: dict, generator: str, names: list[str]) -> dict[str, list[float]]:
    """Each metric's values over the rule's window of evaluations of `generator` ("raw" or "ema")."""
    if generator not in GENERATORS:
        raise InputError(f"generator {generator!r}: one of {', '.join(GENERATORS)}")
    rule = rule_for(curve["benchmark"])
    low, high = rule.window
    trained = max((p["samples"] for p in curve["points"]), default=0)
    points = [p for p in curve["points"] if low < p["samples"] <= high]
    if len(points) < rule.window_evaluations:
        raise InputError(f"the curve has {len(points)} evaluations in ({low:,}, {high:,}] and has trained "
                         f"{trained:,} samples; {rule.release} needs {rule.window_evaluations} there, "
                         f"up to {high:,}")
    metrics = [p["metrics"] if generator == "raw" else p.get("ema", {}).get("metrics") for p in points]
    if any(m is None for m in metrics):
        raise InputError("an evaluation in the window has no moving-average generator; judge the raw one")
    return {name: [float(m[name]) for m in metrics] for name in names}


def too_spread(values: list[float]) -> bool:
    low, high = min(values), max(values)
    return high > SPREAD_LIMIT * low if low > 0 else high > 0


def calibration_values(record: HoldTest, names: list[str], rule: Rule) -> dict[str, list[float]]:
    """Each metric's values for the reference generator on the rule's calibration seeds."""
    seeds, wanted = record.seeds, rule.calibration_seeds
    if tuple(seeds) != wanted:
        raise InputError(f"the calibration record holds seeds {seeds[:3]}...; the rule takes exactly "
                         f"{wanted[0]}-{wanted[-1]} (`harness reference holdtest --seeds {wanted[0]}-{wanted[-1]}`)")
    judged = record.document["seeds"]
    return {name: [float(judged[str(s)]["metrics"][name]) for s in seeds] for name in names}


def v3_limits(window: dict[str, list[float]], calibration: dict[str, list[float]], floors: dict[str, float],
              cap_limits: dict[str, float], cap_name: str = "v2", tolerance_over: Optional[int] = None
              ) -> tuple[dict[str, dict], dict[str, dict]]:
    """(gated limits, metrics dropped as too unsteady), each entry saying what set it; a limit
    above `cap_limits`' for its metric is set to it (`cap_name` says whose). With
    `tolerance_over` = K, the calibration seeds' bound is v1's tolerance bound for K gated metrics,
    else MARGIN x their max."""
    gated, dropped = {}, {}
    for name, values in window.items():
        if too_spread(values):
            dropped[name] = {"window_min": significant(min(values)), "window_max": significant(max(values))}
            continue
        seed_values = calibration[name]
        seeds_bound = (threshold_from_floor(np.asarray(seed_values), tolerance_over)[0] if tolerance_over
                       else MARGIN * max(seed_values))
        bounds = {"window": MARGIN * max(values), "calibration seeds": seeds_bound, "noise floor": floors[name]}
        set_by = max(bounds, key=bounds.get)
        limit = round_up(bounds[set_by])
        entry = {"threshold": limit, "set_by": set_by, "window_max": significant(max(values)),
                 "calibration_max": significant(max(calibration[name])), "floor_limit": floors[name]}
        if name in cap_limits and limit > cap_limits[name]:
            entry.update(threshold=cap_limits[name], set_by=f"{cap_name}'s limit (never looser than {cap_name})",
                         rule_limit=limit)
        gated[name] = entry
    return gated, dropped


def release_candidate(judged_against: quality.Thresholds, floors: dict[str, float], curve: dict,
                      curve_sha256: str, generator: str, calibration: HoldTest, command: str = "") -> dict:
    """The release candidate document (not submittable) the rule gives for the curve's benchmark;
    `judged_against` is the rule's (v2 for 3dgan, the angle noise floor for 3dgan-angle), whose
    evaluation design the candidate keeps. `calibration` is the hold-test record of the window's
    last generator (the one that ships) on the calibration seeds."""
    rule = rule_for(judged_against.benchmark)
    names = proposed_metrics(judged_against)
    missing = [name for name in names if name not in floors]
    if missing:
        raise InputError(f"no noise-floor limit for {missing[:3]}; compute them by v1's procedure first")
    cap, cap_name, never = {}, "", ""
    if rule.never_looser_than:
        cap = quality.load_thresholds(rule.benchmark, version=rule.never_looser_than).limits
        cap_name = short_version(rule.never_looser_than)
        never = f"; never looser than {cap_name}"
    tolerance_over = len(names) if rule.calibration_tolerance else None
    gated, dropped = v3_limits(window_values(curve, generator, names), calibration_values(calibration, names, rule),
                               floors, cap, cap_name, tolerance_over)
    seeds = rule.calibration_seeds
    seeds_bound = (f"v1's tolerance bound (Gamma quantile 1 - 0.01/{tolerance_over}, at least "
                   f"{MARGIN_OVER_MAX} x the max) over calibration seeds" if tolerance_over
                   else f"{MARGIN} x its max over calibration seeds")
    return {
        "benchmark": rule.benchmark, "version": rule.rc_version, "smoke": False, "submittable": False,
        "description": f"Release candidate of {quality.version_name(rule.release)}, a target the shipped "
                       "reference holds on fresh samples (CALIBRATION.md, the v3 rule): per metric the "
                       f"largest of {MARGIN} x the reference's window max, {seeds_bound} "
                       f"{seeds[0]}-{seeds[-1]}, and the noise-floor limit{never}. Not submittable "
                       "until it holds and a second seed reaches it.",
        "evaluation": judged_against.document["evaluation"],
        "calibration": {
            "command": command, "date": dt.date.today().isoformat(), **suite_provenance(),
            "campaign": {"benchmark": curve["benchmark"], "seed": curve["seed"], "curve_sha256": curve_sha256,
                         "generator": generator, "window": list(rule.window), "recipe": curve["recipe"]},
            "calibration_record": {"candidate_sha256": calibration.document["candidate_sha256"],
                                   "seeds": calibration.seeds},
            "dropped_as_unsteady": dropped,
        },
        "reproduction": {"within_samples": reproduction_samples(curve["recipe"]["budget_samples"]),
                         "reference_seed": curve["seed"]},
        "metrics": gated,
    }
