"""v3: a target the shipped reference holds on fresh evaluation samples.

The rule is CALIBRATION.md's "v3 limits: the rule", fixed before any study arm reached its
window; this module only applies it. The reference is the recipe study's winning (arm,
generator) pair at 200,000 samples. Per gated metric the limit is the largest of

* MARGIN x its largest value over the arm's evaluations in the final window (150k-200k],
* MARGIN x its largest value for that generator on the 20 calibration seeds (a hold-test
  record, `benchmark.hold_test`): the evaluation sample's own noise, which v2's margin lacked,
* its noise-floor limit,

rounded up to 3 significant digits, and never above v2's limit where v2 gates the metric (a
reference that then fails the hold test is the recipe's failure, recorded, not loosened).
The gated metrics are v2's plus the per-bin second-moment separations, except any on which the
reference spreads over more than SPREAD_LIMIT across the window (reported, not gated).
"""
from __future__ import annotations

import datetime as dt
from benchmark import quality
from benchmark.calibration import round_up, significant, suite_provenance
from benchmark.hold_test import CALIBRATION_SEEDS, HoldTest
from benchmark.recipe import reproduction_samples
from benchmark.recipe_study import FINAL_WINDOW
from benchmark.reference_target import SEPARATION_PREFIX, v2_gated_metrics
from reference_model.errors import InputError

MARGIN = 1.1
SPREAD_LIMIT = 3.0  # max / min over the window above this: the metric is too unsteady to gate
ADDED_PER_BIN = ("moment_x2", "moment_y2", "moment_z2")  # shower widths, per energy bin
WINDOW_EVALUATIONS = 10
GENERATORS = ("raw", "ema")


def rc_version(benchmark: str) -> str:
    return f"{benchmark}-quality-v3-rc"


def proposed_metrics(thresholds: quality.Thresholds) -> list[str]:
    """v2's gated metrics plus the second-moment separations, for `thresholds`' energy bins."""
    added = [f"{SEPARATION_PREFIX}{feature}.{quality.bin_label(low, high)}"
             for low, high in thresholds.energy_bins_gev for feature in ADDED_PER_BIN]
    return [*v2_gated_metrics(thresholds), *added]


def window_values(curve: dict, generator: str, names: list[str]) -> dict[str, list[float]]:
    """Each metric's values over the final window's evaluations of `generator` ("raw" or "ema")."""
    if generator not in GENERATORS:
        raise InputError(f"generator {generator!r}: one of {', '.join(GENERATORS)}")
    low, high = FINAL_WINDOW
    trained = max((p["samples"] for p in curve["points"]), default=0)
    points = [p for p in curve["points"] if low < p["samples"] <= high]
    if len(points) < WINDOW_EVALUATIONS:
        raise InputError(f"the curve has {len(points)} evaluations in ({low:,}, {high:,}] and has trained "
                         f"{trained:,} samples; v3 needs {WINDOW_EVALUATIONS} there, up to {high:,}")
    metrics = [p["metrics"] if generator == "raw" else p.get("ema", {}).get("metrics") for p in points]
    if any(m is None for m in metrics):
        raise InputError("an evaluation in the window has no moving-average generator; judge the raw one")
    return {name: [float(m[name]) for m in metrics] for name in names}


def too_spread(values: list[float]) -> bool:
    low, high = min(values), max(values)
    return high > SPREAD_LIMIT * low if low > 0 else high > 0


def calibration_values(record: HoldTest, names: list[str]) -> dict[str, list[float]]:
    """Each metric's values for the reference generator on the calibration seeds."""
    seeds = record.seeds
    if tuple(seeds) != CALIBRATION_SEEDS:
        raise InputError(f"the calibration record holds seeds {seeds[:3]}...; the rule takes exactly "
                         f"{CALIBRATION_SEEDS[0]}-{CALIBRATION_SEEDS[-1]} (`harness reference holdtest "
                         f"--seeds {CALIBRATION_SEEDS[0]}-{CALIBRATION_SEEDS[-1]}`)")
    judged = record.document["seeds"]
    return {name: [float(judged[str(s)]["metrics"][name]) for s in seeds] for name in names}


def v3_limits(window: dict[str, list[float]], calibration: dict[str, list[float]], floors: dict[str, float],
              v2_limits: dict[str, float]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(gated limits, metrics dropped as too unsteady), each entry saying what set it."""
    gated, dropped = {}, {}
    for name, values in window.items():
        if too_spread(values):
            dropped[name] = {"window_min": significant(min(values)), "window_max": significant(max(values))}
            continue
        bounds = {"window": MARGIN * max(values), "calibration seeds": MARGIN * max(calibration[name]),
                  "noise floor": floors[name]}
        set_by = max(bounds, key=bounds.get)
        limit = round_up(bounds[set_by])
        entry = {"threshold": limit, "set_by": set_by, "window_max": significant(max(values)),
                 "calibration_max": significant(max(calibration[name])), "floor_limit": floors[name]}
        if name in v2_limits and limit > v2_limits[name]:
            entry.update(threshold=v2_limits[name], set_by="v2's limit (never looser than v2)", rule_limit=limit)
        gated[name] = entry
    return gated, dropped


def release_candidate(v2: quality.Thresholds, floors: dict[str, float], curve: dict, curve_sha256: str,
                      generator: str, calibration: HoldTest, command: str = "") -> dict:
    """The v3 release candidate document (not submittable) the rule gives. `calibration` is the
    hold-test record of the window's last generator (the one that ships) on the calibration seeds."""
    names = proposed_metrics(v2)
    missing = [name for name in names if name not in floors]
    if missing:
        raise InputError(f"no noise-floor limit for {missing[:3]}; compute them by v1's procedure first")
    gated, dropped = v3_limits(window_values(curve, generator, names), calibration_values(calibration, names),
                               floors, v2.limits)
    return {
        "benchmark": v2.benchmark, "version": rc_version(v2.benchmark), "smoke": False, "submittable": False,
        "description": "Release candidate of v3, a target the shipped reference holds on fresh samples "
                       f"(CALIBRATION.md, 'v3 limits: the rule'): per metric the largest of {MARGIN} x the "
                       f"reference's window max, {MARGIN} x its max over calibration seeds "
                       f"{CALIBRATION_SEEDS[0]}-{CALIBRATION_SEEDS[-1]}, and the noise-floor limit; never "
                       "looser than v2. Not submittable until it holds and a second seed reaches it.",
        "evaluation": v2.document["evaluation"],
        "calibration": {
            "command": command, "date": dt.date.today().isoformat(), **suite_provenance(),
            "campaign": {"benchmark": curve["benchmark"], "seed": curve["seed"], "curve_sha256": curve_sha256,
                         "generator": generator, "window": list(FINAL_WINDOW), "recipe": curve["recipe"]},
            "calibration_record": {"candidate_sha256": calibration.document["candidate_sha256"],
                                   "seeds": calibration.seeds},
            "dropped_as_unsteady": dropped,
        },
        "reproduction": {"within_samples": reproduction_samples(curve["recipe"]["budget_samples"]),
                         "reference_seed": curve["seed"]},
        "metrics": gated,
    }

