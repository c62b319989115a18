"""v2: the quality target the reference reaches, set from its campaign by a rule fixed in advance.

The rule (benchmark/thresholds/CALIBRATION.md, "v2"): over the reference seed's last
REFERENCE_WINDOW evaluations up to its budget, each gated metric's limit is the larger of its
noise-floor limit and REFERENCE_MARGIN x its largest value there. At the budget the limits are
written as a release candidate, `<benchmark>-quality-v2-rc`, not submittable. A second seed,
trained from scratch with the same recipe, must then pass every limit at one of its evaluations
within `CampaignRecipe.reproduction_samples`; only then is v2 promoted: the same limits, under
`<benchmark>-quality-v2`, submittable, with the reproduction on record.

Metrics the noise-floor calibration (v1) did not gate, such as the energy-weighted profile
distances, get their floor limit here by v1's own procedure: its design, seeds, repetitions and
Bonferroni count, so every floor limit of v2 comes from the same pairs of stand-in samples.
"""
from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from benchmark import quality
from benchmark.calibration import noise_floor, round_up, significant, suite_provenance, threshold_from_floor
from reference_model.errors import InputError

REFERENCE_WINDOW = 6  # the reference's last evaluations up to its budget
REFERENCE_MARGIN = 1.25  # over the reference's largest value in that window
V2_GATED = ("objective.sampling_fraction", "profile_l1.x", "profile_l1.y", "profile_l1.z")
V2_GATED_PER_BIN = ("sampling_fraction", "hits", "moment_x1", "moment_y1", "moment_z1")
SEPARATION_PREFIX = "separation."
SEPARATION_MAX = 1.0  # a separation power never exceeds 1: a limit at or above it gates nothing


def release_candidate_path(benchmark: str) -> Path:
    """Where `harness reference target --write` writes the benchmark's v2 release candidate."""
    return quality.THRESHOLDS_DIR / f"{benchmark}-v2-rc.json"


def v2_gated_metrics(thresholds: quality.Thresholds) -> list[str]:
    """The metrics v2 gates, for the evaluation design of `thresholds`."""
    per_bin = [f"{SEPARATION_PREFIX}{feature}.{quality.bin_label(low, high)}"
               for low, high in thresholds.energy_bins_gev for feature in V2_GATED_PER_BIN]
    return [*V2_GATED, *per_bin]


def limits_from_reference(points: list[dict], floor_limits: dict[str, float], gated: list[str],
                          window: int = REFERENCE_WINDOW, margin: float = REFERENCE_MARGIN
                          ) -> dict[str, dict]:
    """Each gated metric's limit: the larger of its noise-floor limit and `margin` x its largest
    value over the reference's last `window` evaluations, rounded up to 3 significant digits."""
    if len(points) < window:
        raise InputError(f"the reference curve has {len(points)} evaluations; the rule needs the last {window}")
    missing = [name for name in gated if name not in floor_limits]
    if missing:
        raise InputError(f"no noise-floor limit for {missing[:3]}; run harness calibrate so every "
                         "gated metric has one")
    last = points[-window:]
    limits = {}
    for name in gated:
        values = [p["metrics"].get(name) for p in last]
        if any(v is None or not np.isfinite(v) for v in values):
            raise InputError(f"metric {name} is missing or not finite in the reference's last {window} "
                             "evaluations; the curve cannot set its limit")
        reference_bound = margin * max(values)
        limits[name] = {"threshold": round_up(max(floor_limits[name], reference_bound)),
                        "floor_limit": floor_limits[name], "reference_max": significant(max(values)),
                        "set_by": ("noise floor" if floor_limits[name] >= reference_bound
                                   else f"{margin} x the reference's max over its last {window} evaluations")}
    return limits


def window_points(curve: dict, window: int = REFERENCE_WINDOW) -> list[dict]:
    """The reference's last `window` evaluations up to its budget; refused before the budget."""
    budget = curve["recipe"]["budget_samples"]
    evaluated = [p for p in curve["points"] if p["samples"] <= budget]
    reached = max((p["samples"] for p in evaluated), default=0)
    if reached < budget:
        raise InputError(f"{curve['benchmark']} seed {curve['seed']} has evaluated {reached:,} of its "
                         f"{budget:,}-sample budget: v2 takes its last {window} evaluations up to the "
                         "budget (keep training; `harness reference target` shows a preview)")
    if len(evaluated) < window:
        raise InputError(f"the reference curve has {len(evaluated)} evaluations; the rule needs the last {window}")
    return evaluated[-window:]


def floor_limits_like_v1(v1: quality.Thresholds, names: list[str], progress: bool = True) -> dict[str, dict]:
    """Noise-floor limits for metrics v1 did not gate, by v1's procedure on v1's pairs."""
    calibration = v1.document["calibration"]
    floors = noise_floor(v1, calibration["repetitions"], calibration["seed"], progress)
    unknown = [name for name in names if name not in floors]
    if unknown:
        raise InputError(f"the gate measures no metric {unknown[0]!r}; v2 cannot gate it")
    return {name: threshold_from_floor(floors[name], calibration["gated_metrics"])[1] for name in names}


def release_candidate(curve: dict, curve_sha256: str, v1: quality.Thresholds, command: str = "",
                      progress: bool = True) -> dict:
    """The v2 thresholds document the rule gives from the reference's curve (not submittable)."""
    from benchmark.recipe import CampaignRecipe

    points = window_points(curve)
    gated = v2_gated_metrics(v1)
    missing = [name for name in gated if name not in v1.limits]
    added = floor_limits_like_v1(v1, missing, progress) if missing else {}
    floors = {name: added[name]["threshold"] if name in added else v1.limits[name] for name in gated}
    limits = limits_from_reference(points, floors, gated)
    for name, entry in limits.items():
        entry["reference_values"] = [significant(p["metrics"][name]) for p in points]
        if name in added:
            entry["floor_set_by"] = f"{added[name]['set_by']} (v1's procedure, computed for v2)"
            entry["noise_floor"] = added[name]["noise_floor"]
        if name.startswith(SEPARATION_PREFIX) and entry["threshold"] >= SEPARATION_MAX:
            entry["note"] = "limit at or above the largest separation power (1): it gates nothing"
    reproduction_samples = CampaignRecipe(**curve["recipe"]).reproduction_samples
    return {
        "benchmark": v1.benchmark,
        "version": f"{v1.benchmark}-quality-v2-rc",
        "smoke": False,
        "submittable": False,
        "description": "Release candidate of v2, the target the reference reaches: each gated metric's "
                       f"limit is the larger of its noise-floor limit and {REFERENCE_MARGIN} x the reference "
                       f"campaign's largest value over its last {REFERENCE_WINDOW} evaluations up to its "
                       "budget (CALIBRATION.md, 'v2'). Not submittable until a second seed reaches it within "
                       f"{reproduction_samples:,} samples.",
        "evaluation": v1.document["evaluation"],
        "calibration": {
            "command": command, "date": dt.date.today().isoformat(), **suite_provenance(),
            "rule": f"limit = max(noise-floor limit, {REFERENCE_MARGIN} x max over the reference's last "
                    f"{REFERENCE_WINDOW} evaluations up to its budget), rounded up to 3 significant digits",
            "floors_from": v1.version,
            "floors_computed_here": missing,
            "campaign": {"benchmark": curve["benchmark"], "seed": curve["seed"], "curve_sha256": curve_sha256,
                         "window_samples": [p["samples"] for p in points], "recipe": curve["recipe"]},
        },
        "reproduction": {"within_samples": reproduction_samples, "reference_seed": curve["seed"]},
        "metrics": limits,
    }


@dataclass
class Reproduction:
    """A second seed's evaluations judged against the release candidate's limits."""

    seed: int
    within_samples: int
    trained: int  # samples the seed's latest evaluation had trained
    first_pass: Optional[int]  # samples of its earliest evaluation passing every limit
    closest: list[tuple[int, list[str]]]  # (samples, failing limits) of its best evaluations

    @property
    def reproduced(self) -> bool:
        return self.first_pass is not None and self.first_pass <= self.within_samples

    @property
    def exhausted(self) -> bool:
        """No pass within the allowance, and the allowance is spent: v2 is not reproduced."""
        return not self.reproduced and self.trained >= self.within_samples


def failing_limits(points: list[dict], limits: dict[str, float],
                   generator: str = "raw") -> list[tuple[int, list[str]]]:
    """(samples, the limits it fails) for every evaluation of a curve, judging its trained
    generator ("raw") or a study arm's moving average ("ema"; an evaluation without one fails)."""
    def metrics(point: dict) -> dict:
        return point["metrics"] if generator == "raw" else point.get("ema", {}).get("metrics", {})

    return [(point["samples"], [name for name, limit in limits.items()
                                if not metrics(point).get(name, math.inf) <= limit]) for point in points]


def judged_generator(candidate: quality.Thresholds) -> str:
    """Which generator of a second seed's evaluations a release candidate judges: the one that
    set it ("ema" for a v3 set by a moving average; v2 was set by the trained generator)."""
    return candidate.document.get("calibration", {}).get("campaign", {}).get("generator", "raw")


def judge_reproduction(candidate: quality.Thresholds, curve: dict, closest: int = 3) -> Reproduction:
    """Judge every recorded evaluation of `curve` (a second seed) against `candidate`'s limits."""
    rc = candidate.document.get("reproduction")
    campaign = candidate.document.get("calibration", {}).get("campaign")
    if rc is None or campaign is None:
        raise InputError(f"{candidate.path}: not a release candidate (no reproduction block); write "
                         "one with `harness reference target --write` (v2) or `target-v3` (v3)")
    if curve["seed"] == rc["reference_seed"]:
        raise InputError(f"seed {curve['seed']} set the limits; the reproduction needs another seed")
    if curve["recipe"] != campaign["recipe"]:
        raise InputError(f"{curve['benchmark']} seed {curve['seed']} trained another recipe than the "
                         f"reference; only the same recipe reproduces {candidate.name}")
    judged = failing_limits(curve["points"], candidate.limits, judged_generator(candidate))
    passes = [samples for samples, failing in judged if not failing]
    return Reproduction(seed=curve["seed"], within_samples=rc["within_samples"],
                        trained=max((s for s, _ in judged), default=0),
                        first_pass=min(passes, default=None),
                        closest=sorted(judged, key=lambda j: (len(j[1]), j[0]))[:closest])


def promoted_target(candidate: quality.Thresholds, verdict: Reproduction, curve_sha256: str,
                    command: str = "") -> dict:
    """v2 itself: the release candidate's limits unchanged, submittable, the reproduction recorded."""
    if not verdict.reproduced:
        raise InputError(f"seed {verdict.seed} has not reproduced {candidate.name}; nothing to promote")
    document = copy.deepcopy(candidate.document)
    document["version"] = candidate.name.removesuffix("-rc")
    document["submittable"] = True
    document["description"] = (f"{document['version']}: the limits of {candidate.name} (CALIBRATION.md), "
                               f"reproduced by seed {verdict.seed} at {verdict.first_pass:,} samples. "
                               f"The candidate's own description: {candidate.document['description']}")
    document["reproduction"].update({
        "candidate": candidate.version, "reproduced_by_seed": verdict.seed,
        "first_pass_samples": verdict.first_pass, "curve_sha256": curve_sha256,
        "command": command, "date": dt.date.today().isoformat()})
    return document
