"""From a finished reference campaign to its hold-tested release candidate, in resumable steps.

CALIBRATION.md's "v3 limits: the rule" (fixed before any study arm reached its window) names the
steps, and the variable-angle benchmark's target follows them on its own campaign (its rule in
`target_v3.RULES`); `target_v3` holds the rule's arithmetic, this module the order and the files,
each step's output a committed file the next one reads, so an interrupted run resumes where it
stopped:

1. export: the reference generator at the end of its window (its moving average if that won):
   for 3dgan the recipe study's winning arm, for 3dgan-angle its campaign, which trains the
   study's pick -> benchmark/convergence/state/<benchmark>-<version>-reference.weights.h5, with
   its card;
2. calibrate: its hold test on the rule's calibration seeds (3dgan: 4001-4020, judged against v2;
   3dgan-angle: 4101-4120, against its noise floor; every metric is recorded whatever the
   target), beside it;
3. write: the limits the rule gives, as the rule's release candidate, registered, not
   submittable (the command writes and registers the document this module makes); noise-floor
   limits of the metrics neither target gates by v1's procedure on v1's pairs;
4. hold: its hold test against the candidate on the rule's validation seeds: it holds when it
   passes at least 19 of 20.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from benchmark import campaign, quality, recipe_study, target_v3
from benchmark.hold_test import HoldTest, record_path, run_hold_test
from reference_model.errors import InputError

BENCHMARK = "3dgan"  # the study trains the fixed-angle benchmark's recipes


def reference_path(benchmark: str = BENCHMARK) -> Path:
    """Where the reference generator is exported (committed with the campaign state)."""
    from reference_model.checkpoint import WEIGHTS_SUFFIX

    short = target_v3.rule_for(benchmark).short
    return campaign.CONVERGENCE_DIR / "state" / f"{benchmark}-{short}-reference{WEIGHTS_SUFFIX}"


def candidate_path(benchmark: str = BENCHMARK) -> Path:
    return quality.THRESHOLDS_DIR / f"{benchmark}-{target_v3.rule_for(benchmark).short}-rc.json"


def calibration_record(reference: Path, benchmark: str = BENCHMARK) -> Path:
    """Step 2's record: the reference's hold test on the calibration seeds, against the rule's
    judged-against target."""
    return record_path(reference, target_v3.rule_for(benchmark).judged_against)


def hold_record(reference: Path, benchmark: str = BENCHMARK) -> Path:
    """Step 4's record: the reference's hold test on the validation seeds, against the candidate."""
    return record_path(reference, target_v3.rc_version(benchmark))


def winner(limits: dict[str, float]) -> tuple[str, str]:
    """The study's (arm, generator) pick, or a one-line error saying what is left to train."""
    verdict = recipe_study.final_verdict(limits)
    if verdict.winner is None:
        segment = recipe_study.next_segment(limits)
        left = f"next: the {segment[0]} arm to {segment[1]:,} samples" if segment else "no arm has its window"
        raise InputError(f"the recipe study has no winner yet ({left}); train it with `harness reference study`")
    return verdict.winner


def export_reference(arm: str, generator: str, path: Optional[Path] = None) -> Path:
    """The study arm's generator at the end of the final window, raw or its moving average,
    written to `path` with its card; an export of the same (arm, generator, samples) already there
    is kept."""
    recipe = recipe_study.STUDY[arm]
    end = recipe_study.segment_end(arm, recipe_study.FINAL_WINDOW[1])
    return _export(recipe, generator, end, Path(path or reference_path()), f"the {arm} arm", {"arm": arm})


def export_angle_reference(limits: dict[str, float], path: Optional[Path] = None) -> Path:
    """The angle campaign's generator at the end of its window (the last evaluation within it),
    its moving average if the recipe study picked one, written to `path` with its card."""
    from benchmark.recipe import ANGLE_BENCHMARK

    recipe = recipe_study.angle_recipe(limits)
    high = target_v3.rule_for(ANGLE_BENCHMARK).window[1]
    end = high // recipe.eval_every_samples * recipe.eval_every_samples
    generator = "raw" if recipe.ema_decay is None else "ema"
    return _export(recipe, generator, end, Path(path or reference_path(ANGLE_BENCHMARK)), "the angle campaign", {})


def _export(recipe, generator: str, end: int, path: Path, what: str, card: dict) -> Path:
    from benchmark.ship import final_generator
    from reference_model.checkpoint import read_card

    curve = campaign.read_curve(recipe.campaign_name, recipe_study.SEED)
    if curve is None or recipe_study.curve_samples(curve) != end:
        trained = recipe_study.curve_samples(curve)
        raise InputError(f"{what} stands at {trained:,} samples; its generator is exported at the end "
                         f"of the window, {end:,}")
    if path.is_file():
        held = read_card(path)
        if (held.get("campaign"), held.get("generator"), held.get("samples")) == (recipe.campaign_name, generator, end):
            return path
        raise InputError(f"{path} holds another export ({held.get('campaign')} {held.get('generator')} at "
                         f"{held.get('samples')}); an exported reference is never replaced: remove it by hand "
                         "if the study's verdict changed")
    ema_decay = recipe.ema_decay if generator == "ema" else None
    return final_generator(recipe.campaign_name, recipe_study.SEED, curve, path, ema_decay=ema_decay,
                           card={**card, "campaign": recipe.campaign_name})


def floor_limits(judged: quality.Thresholds, v1: quality.Thresholds, names: list[str],
                 measure: Optional[Callable[[quality.Thresholds, list[str]], dict[str, dict]]] = None
                 ) -> dict[str, float]:
    """Each metric's noise-floor limit: the recorded floor of the target the rule judges against
    where it gates the metric (v2's record; the noise-floor target v1's own limit), else by v1's
    procedure (`measure`, `reference_target.floor_limits_like_v1` unless a test passes its own)."""
    if measure is None:
        from benchmark.reference_target import floor_limits_like_v1 as measure
    recorded = {name: judged.document["metrics"][name].get("floor_limit", judged.limits[name])
                for name in names if name in judged.limits}
    missing = [name for name in names if name not in recorded]
    measured = measure(v1, missing) if missing else {}
    return {name: recorded[name] if name in recorded else measured[name]["threshold"] for name in names}


def calibrate(reference: Path, data_dir: Path, command: str = "",
              on_seed: Optional[Callable[[int, dict], None]] = None, benchmark: str = BENCHMARK) -> HoldTest:
    """Step 2: the reference's hold test on the rule's calibration seeds, judged against the
    rule's target (3dgan: v2)."""
    rule = target_v3.rule_for(benchmark)
    judged = quality.load_thresholds(benchmark, version=rule.judged_against)
    return run_hold_test(reference, judged, rule.calibration_seeds, data_dir, calibration_record(reference, benchmark),
                         command=command, on_seed=on_seed)


def candidate_document(reference: Path, calibration: HoldTest, curve_sha256: Callable[[Path], str],
                       command: str = "", measure=None, benchmark: str = BENCHMARK) -> dict:
    """Step 3: the release candidate the rule gives (the caller writes and registers it);
    `curve_sha256` hashes the reference campaign's curve file as the registry does."""
    from reference_model.checkpoint import read_card, sha256_of

    if not calibration.complete or calibration.document["candidate_sha256"] != sha256_of(reference):
        raise InputError(f"the calibration hold test of {reference.name} is not complete; run it first")
    card = read_card(reference)
    rule = target_v3.rule_for(benchmark)
    judged = quality.load_thresholds(benchmark, version=rule.judged_against)
    v1 = quality.load_thresholds(benchmark, version=rule.floors_from)
    floors = floor_limits(judged, v1, target_v3.proposed_metrics(judged), measure)
    name = card["campaign"]
    document = target_v3.release_candidate(judged, floors, campaign.read_curve(name, recipe_study.SEED),
                                           curve_sha256(campaign.curve_path(name, recipe_study.SEED)),
                                           card["generator"], calibration, command=command)
    document["calibration"]["reference"] = {"path": reference.name, "sha256": card["sha256"], "campaign": name,
                                            **({"arm": card["arm"]} if "arm" in card else {}),
                                            "generator": card["generator"], "samples": card["samples"]}
    return document


def hold(reference: Path, data_dir: Path, command: str = "",
         on_seed: Optional[Callable[[int, dict], None]] = None, benchmark: str = BENCHMARK) -> HoldTest:
    """Step 4: the reference against the candidate on the rule's validation seeds."""
    candidate = quality.load_thresholds(benchmark, version=target_v3.rc_version(benchmark))
    return run_hold_test(reference, candidate, target_v3.rule_for(benchmark).validation_seeds, data_dir,
                         hold_record(reference, benchmark), command=command, on_seed=on_seed)
