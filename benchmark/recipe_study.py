"""The reference-recipe study (issue 22): which recipe the next target's reference trains with.

The arms (`benchmark.recipe.STUDY`), the order they train in, the score and the rule that picks
one were fixed in benchmark/thresholds/CALIBRATION.md ("v3 recipe study") before any arm trained;
this module carries that rule out and nothing else. Every arm is a campaign of seed 1
(`benchmark.campaign`), so it resumes across sessions and commits its curve and state; the study
runs its segments one after the other in the one background slot (`harness reference study`).
"""
from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass
from typing import Optional

from benchmark import campaign
from benchmark.recipe import STUDY, ScheduledRecipe, StudyRecipe, angle_campaign

SEED = 1
# (arm, samples): each segment trains its arm up to that many samples, in this order. The
# batch-128 arm's second half trains only if it passed the stage gate at STAGE_SAMPLES.
SEGMENTS: tuple[tuple[str, int], ...] = (("constant", 100_000), ("batch128", 100_000),
                                         ("constant", 200_000), ("cosine", 200_000),
                                         ("batch128", 200_000))
STAGE_SAMPLES = 100_000
STAGE_WINDOW = (50_000, 100_000)  # (exclusive, inclusive) samples judged at the stage gate
STAGE_GATE_FACTOR = 1.25  # batch 128 continues if its stage score is within 1.25x the constant's
FINAL_WINDOW = (150_000, 200_000)
TIE_FACTOR = 1.05  # within 5% of the lowest counts as a tie; the simplest tied arm wins
RATIO_CAP = 3.0  # one metric's value / limit counts at most this much in a score
GATING_VERSION = "3dgan-quality-v2"  # the target whose gated metrics and limits score an evaluation
# Simplest first: the tie-break order of (arm, generator) pairs.
SIMPLICITY = (("constant", "raw"), ("constant", "ema"), ("cosine", "raw"), ("cosine", "ema"),
              ("batch128", "raw"), ("batch128", "ema"))


def gated_score(metrics: dict[str, float], limits: dict[str, float]) -> float:
    """Mean over the gating target's metrics of value / limit, each capped at RATIO_CAP: the
    energy-weighted physics the target gates, 1.0 meaning "at the limit" on average."""
    return statistics.fmean(min(metrics[name] / limit, RATIO_CAP) for name, limit in limits.items())


def gating_limits() -> dict[str, float]:
    from benchmark import quality

    return quality.load_thresholds("3dgan", version=GATING_VERSION).limits


def read_arm(arm: str) -> Optional[dict]:
    return campaign.read_curve(STUDY[arm].campaign_name, SEED)


def curve_samples(curve: Optional[dict]) -> int:
    """Samples an arm's curve has trained (0 before its first session)."""
    return curve["sessions"][-1]["samples_at_stop"] if curve and curve["sessions"] else 0


def arm_samples(arm: str) -> int:
    return curve_samples(read_arm(arm))


def segment_end(arm: str, samples: int) -> int:
    """Where a segment "to `samples`" ends: the arm's last evaluation within that many samples
    (batch128 evaluates every 5,120: 97,280 and 199,680), so its checkpoint is an evaluated
    generator, the window's last one at the end of the study."""
    every = STUDY[arm].eval_every_samples
    return samples // every * every


def reached(arm: str, samples: int, curve: Optional[dict] = None) -> bool:
    """Has the arm trained its segment to `samples`?"""
    return curve_samples(read_arm(arm) if curve is None else curve) >= segment_end(arm, samples)


def window_score(points: list[dict], window: tuple[int, int], limits: dict[str, float],
                 generator: str = "raw") -> Optional[float]:
    """Median score of the evaluations with window[0] < samples <= window[1]; None if none."""
    scores = [gated_score(p["metrics"] if generator == "raw" else p["ema"]["metrics"], limits)
              for p in points if window[0] < p["samples"] <= window[1]
              and (generator == "raw" or "ema" in p)]
    return statistics.median(scores) if scores else None


def _best_of_arm(points: list[dict], window: tuple[int, int], limits: dict[str, float]) -> Optional[float]:
    scores = [s for g in ("raw", "ema") if (s := window_score(points, window, limits, g)) is not None]
    return min(scores) if scores else None


@dataclass(frozen=True)
class StageGate:
    constant: Optional[float]
    batch128: Optional[float]

    @property
    def decided(self) -> bool:
        return self.constant is not None and self.batch128 is not None

    @property
    def batch128_continues(self) -> bool:
        return self.decided and self.batch128 <= STAGE_GATE_FACTOR * self.constant


def stage_gate(limits: dict[str, float]) -> StageGate:
    """The batch-128 arm against the constant one over STAGE_WINDOW (each at its better generator),
    once both have trained to STAGE_SAMPLES."""
    scores = {}
    for arm in ("constant", "batch128"):
        curve = read_arm(arm)
        done = curve is not None and reached(arm, STAGE_SAMPLES, curve)
        scores[arm] = _best_of_arm(curve["points"], STAGE_WINDOW, limits) if done else None
    return StageGate(**scores)


@dataclass(frozen=True)
class Verdict:
    scores: dict[tuple[str, str], float]  # (arm, generator) -> final window median
    winner: Optional[tuple[str, str]]  # None until every arm still in the study has its window


def final_verdict(limits: dict[str, float]) -> Verdict:
    """The study's pick: the lowest FINAL_WINDOW median; ties (within TIE_FACTOR) go to the simplest."""
    arms = ["constant", "cosine"] + (["batch128"] if stage_gate(limits).batch128_continues else [])
    scores, complete = {}, True
    for arm in arms:
        curve = read_arm(arm)
        if curve is None or not reached(arm, FINAL_WINDOW[1], curve):
            complete = False
            continue
        for generator in ("raw", "ema"):
            score = window_score(curve["points"], FINAL_WINDOW, limits, generator)
            if score is not None:
                scores[(arm, generator)] = score
    if not complete or not scores:
        return Verdict(scores, None)
    lowest = min(scores.values())
    tied = [pair for pair in SIMPLICITY if pair in scores and scores[pair] <= TIE_FACTOR * lowest]
    return Verdict(scores, tied[0])


def angle_recipe(limits: dict[str, float]) -> ScheduledRecipe:
    """The variable-angle campaign's recipe: the study's pick, adapted by the rule fixed in
    CALIBRATION.md (`recipe.angle_campaign`); a one-line error until the study has picked."""
    from reference_model.errors import InputError

    winner = final_verdict(limits).winner
    if winner is None:
        raise InputError("the 3dgan-angle campaign trains the fixed recipe study's pick (CALIBRATION.md), "
                         "and the study has not picked yet; see harness reference study --status")
    return angle_campaign(*winner)


def next_segment(limits: dict[str, float]) -> Optional[tuple[str, int]]:
    """The first segment its arm has not trained to yet; None when the study is trained."""
    gate = stage_gate(limits)
    for arm, samples in SEGMENTS:
        if arm == "batch128" and samples > STAGE_SAMPLES and gate.decided and not gate.batch128_continues:
            continue
        if not reached(arm, samples):
            return arm, samples
    return None


def branch(recipe: StudyRecipe) -> None:
    """Start `recipe`'s arm from its parent's state at the branch point: the parent's checkpoint
    and the curve's evaluations up to there, recorded as shared. The parent must stand exactly at
    the branch point (its segment ends there), so the copy is the state the two recipes share."""
    from dataclasses import asdict

    from reference_model.atomic_files import write_json_atomic
    from reference_model.checkpoint import sidecar_path
    from reference_model.errors import InputError

    parent = STUDY[recipe.branch_from]
    if arm_samples(parent.arm) != recipe.branch_samples:
        raise InputError(f"the {recipe.arm} arm starts from the {parent.arm} arm at "
                         f"{recipe.branch_samples:,} samples, but that arm stands at "
                         f"{arm_samples(parent.arm):,}; restore benchmark/convergence from git")
    source = read_arm(parent.arm)
    points = [p for p in source["points"] if p["samples"] <= recipe.branch_samples]
    document = {**source, "recipe": asdict(recipe), "points": points,
                "branched_from": {"arm": parent.arm, "samples": recipe.branch_samples}}
    shutil.copytree(campaign.state_dir(parent.campaign_name, SEED),
                    campaign.state_dir(recipe.campaign_name, SEED))
    best, copy = (campaign.best_generator_path(a.campaign_name, SEED) for a in (parent, recipe))
    if best.is_file():
        shutil.copy2(best, copy)
        shutil.copy2(sidecar_path(best), sidecar_path(copy))
    write_json_atomic(campaign.curve_path(recipe.campaign_name, SEED), document)


def pending_branches() -> list[StudyRecipe]:
    """Arms not started whose parent stands at their branch point: branch them before the parent
    trains on past it."""
    return [recipe for recipe in STUDY.values() if recipe.branch_from and read_arm(recipe.arm) is None
            and arm_samples(recipe.branch_from) == recipe.branch_samples]


def status_rows(limits: dict[str, float]) -> list[list]:
    """One row per arm: samples, the latest evaluation's scores, and the window medians so far."""
    rows = []
    for arm, recipe in STUDY.items():
        curve = read_arm(arm)
        points = curve["points"] if curve else []
        last = (points[-1]["samples"] - 1, points[-1]["samples"]) if points else (0, 0)
        rows.append([arm, recipe.per_rank_batch, f"{curve_samples(curve):,}",
                     *(_fmt(window_score(points, window, limits, generator))
                       for window in (last, STAGE_WINDOW, FINAL_WINDOW) for generator in ("raw", "ema"))])
    return rows


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"
