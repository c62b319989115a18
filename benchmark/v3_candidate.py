"""From the recipe study's winner to v3's release candidate, in resumable steps.

CALIBRATION.md's "v3 limits: the rule" (fixed before any study arm reached its window) names the
steps; `target_v3` holds the rule's arithmetic, this module the order and the files, each step's
output a committed file the next one reads, so an interrupted run resumes where it stopped:

1. export: the winning arm's generator at the end of its window (its moving average if that
   won) -> benchmark/convergence/state/<benchmark>-v3-reference.weights.h5, with its card;
2. calibrate: its hold test on calibration seeds 4001-4020 (judged against v2; every metric is
   recorded whatever the target), beside it;
3. write: the limits the rule gives, as <benchmark>-quality-v3-rc, registered, not submittable
   (the command writes and registers the document this module makes);
   noise-floor limits of the metrics v2 did not gate by v1's procedure on v1's pairs;
4. hold: its hold test against the candidate on validation seeds 5001-5020: v3 holds when it
   passes at least 19 of 20.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from benchmark import campaign, quality, recipe_study, target_v3
from benchmark.hold_test import CALIBRATION_SEEDS, VALIDATION_SEEDS, HoldTest, record_path, run_hold_test
from reference_model.errors import InputError

BENCHMARK = "3dgan"  # the study trains the fixed-angle benchmark's recipes
V1_VERSION = "3dgan-quality-v1"  # whose noise-floor procedure gives the added metrics' floors


def reference_path(benchmark: str = BENCHMARK) -> Path:
    """Where the v3 reference generator is exported (committed with the campaign state)."""
    from reference_model.checkpoint import WEIGHTS_SUFFIX

    return campaign.CONVERGENCE_DIR / "state" / f"{benchmark}-v3-reference{WEIGHTS_SUFFIX}"


def candidate_path(benchmark: str = BENCHMARK) -> Path:
    return quality.THRESHOLDS_DIR / f"{benchmark}-v3-rc.json"


def calibration_record(reference: Path) -> Path:
    """Step 2's record: the reference's hold test on the calibration seeds, against v2."""
    return record_path(reference, recipe_study.GATING_VERSION)


def hold_record(reference: Path) -> Path:
    """Step 4's record: the reference's hold test on the validation seeds, against the candidate."""
    return record_path(reference, target_v3.rc_version(BENCHMARK))


def winner(limits: dict[str, float]) -> tuple[str, str]:
    """The study's (arm, generator) pick, or a one-line error saying what is left to train."""
    verdict = recipe_study.final_verdict(limits)
    if verdict.winner is None:
        segment = recipe_study.next_segment(limits)
        left = f"next: the {segment[0]} arm to {segment[1]:,} samples" if segment else "no arm has its window"
        raise InputError(f"the recipe study has no winner yet ({left}); train it with `harness reference study`")
    return verdict.winner


def export_reference(arm: str, generator: str, path: Optional[Path] = None) -> Path:
    """The arm's generator at the end of the final window, raw or its moving average, written to
    `path` with its card; an export of the same (arm, generator, samples) already there is kept."""
    from benchmark.ship import final_generator
    from reference_model.checkpoint import read_card

    path = Path(path or reference_path())
    recipe = recipe_study.STUDY[arm]
    curve = recipe_study.read_arm(arm)
    end = recipe_study.segment_end(arm, recipe_study.FINAL_WINDOW[1])
    if curve is None or recipe_study.curve_samples(curve) != end:
        trained = recipe_study.curve_samples(curve)
        raise InputError(f"the {arm} arm stands at {trained:,} samples; its generator is exported at the end "
                         f"of the window, {end:,}")
    if path.is_file():
        card = read_card(path)
        if (card.get("arm"), card.get("generator"), card.get("samples")) == (arm, generator, end):
            return path
        raise InputError(f"{path} holds another export ({card.get('arm')} {card.get('generator')} at "
                         f"{card.get('samples')}); an exported reference is never replaced: remove it by hand "
                         "if the study's verdict changed")
    ema_decay = recipe.ema_decay if generator == "ema" else None
    return final_generator(recipe.campaign_name, recipe_study.SEED, curve, path, ema_decay=ema_decay,
                           card={"arm": arm, "campaign": recipe.campaign_name})


def floor_limits(v2: quality.Thresholds, v1: quality.Thresholds, names: list[str],
                 measure: Optional[Callable[[quality.Thresholds, list[str]], dict[str, dict]]] = None
                 ) -> dict[str, float]:
    """Each metric's noise-floor limit: v2's record where v2 gates it, else by v1's procedure
    (`measure`, `reference_target.floor_limits_like_v1` unless a test passes its own)."""
    if measure is None:
        from benchmark.reference_target import floor_limits_like_v1 as measure
    recorded = {name: v2.document["metrics"][name]["floor_limit"] for name in names if name in v2.limits}
    missing = [name for name in names if name not in recorded]
    measured = measure(v1, missing) if missing else {}
    return {name: recorded[name] if name in recorded else measured[name]["threshold"] for name in names}


def calibrate(reference: Path, data_dir: Path, command: str = "",
              on_seed: Optional[Callable[[int, dict], None]] = None) -> HoldTest:
    """Step 2: the reference's hold test on the calibration seeds, judged against v2."""
    v2 = quality.load_thresholds(BENCHMARK, version=recipe_study.GATING_VERSION)
    return run_hold_test(reference, v2, CALIBRATION_SEEDS, data_dir, calibration_record(reference),
                         command=command, on_seed=on_seed)


def candidate_document(reference: Path, calibration: HoldTest, curve_sha256: Callable[[Path], str],
                       command: str = "", measure=None) -> dict:
    """Step 3: the release candidate the rule gives (the caller writes and registers it);
    `curve_sha256` hashes the winning arm's curve file as the registry does."""
    from reference_model.checkpoint import read_card, sha256_of

    if not calibration.complete or calibration.document["candidate_sha256"] != sha256_of(reference):
        raise InputError(f"the calibration hold test of {reference.name} is not complete; run it first")
    card = read_card(reference)
    arm = card["arm"]
    v2 = quality.load_thresholds(BENCHMARK, version=recipe_study.GATING_VERSION)
    v1 = quality.load_thresholds(BENCHMARK, version=V1_VERSION)
    floors = floor_limits(v2, v1, target_v3.proposed_metrics(v2), measure)
    curve = campaign.curve_path(recipe_study.STUDY[arm].campaign_name, recipe_study.SEED)
    document = target_v3.release_candidate(v2, floors, recipe_study.read_arm(arm), curve_sha256(curve),
                                           card["generator"], calibration, command=command)
    document["calibration"]["reference"] = {"path": reference.name, "sha256": card["sha256"], "arm": arm,
                                            "generator": card["generator"], "samples": card["samples"]}
    return document


def hold(reference: Path, data_dir: Path, command: str = "",
         on_seed: Optional[Callable[[int, dict], None]] = None) -> HoldTest:
    """Step 4: the reference against the candidate on the validation seeds."""
    candidate = quality.load_thresholds(BENCHMARK, version=target_v3.rc_version(BENCHMARK))
    return run_hold_test(reference, candidate, VALIDATION_SEEDS, data_dir, hold_record(reference),
                         command=command, on_seed=on_seed)
