"""Shipping the frozen reference: a campaign generator, validated against a stand-in set of a seed
it never saw, becomes `reference_model/checkpoints/<benchmark>-generator.weights.h5`.

Which generator: `best`, the campaign's best by its selection metric (the 3DGAN papers'
objective), or `final`, its generator at its latest evaluation. At the budget that is the end of
the window the v2 limits were set on, so `final` is the generator v2 certifies by construction;
the best by objective may lie anywhere on the curve.

Nothing is written unless the generator passes the benchmark's target on that fresh set. What is
written is the weights (copied byte for byte, so the SHA-256 the campaign recorded still holds),
their sidecar (the checkpoint card the loader verifies, extended with where the weights came
from and every metric of the validation), and a model card in Markdown beside them.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Optional

from reference_model.errors import InputError

# the shipping validation set of each benchmark: no campaign set's seed (CALIBRATION.md)
VALIDATION_DATA_SEEDS = {"3dgan": 3001, "3dgan-angle": 3101}
GENERATORS = ("best", "final", "v3")


@dataclass
class ShipOutcome:
    """The validation of the campaign's best generator, and what was written (None: nothing)."""

    report: Any  # benchmark.quality.QualityReport
    source: Path
    card: dict
    weights: Optional[Path] = None
    model_card: Optional[Path] = None


def ship_reference(benchmark: str, seed: int, thresholds, data_dir: Path,
                   validation_seed: Optional[int] = None, dest: Optional[Path] = None,
                   command: str = "", generator: str = "best") -> ShipOutcome:
    """Validate a campaign generator (`best`, `final`, or `v3`: the hold-tested reference the v3
    rule exported, `benchmark.v3_candidate`) on a fresh stand-in set (by default the benchmark's
    shipping validation seed); ship it if it passes."""
    from benchmark import campaign

    if validation_seed is None:
        validation_seed = VALIDATION_DATA_SEEDS[benchmark]
    if generator == "v3":
        return _ship_v3_reference(benchmark, thresholds, data_dir, validation_seed, dest, command)
    document = campaign.read_curve(benchmark, seed)
    if document is None or document.get("best") is None:
        raise InputError(f"no evaluated generator for {benchmark} seed {seed} yet; train it with "
                         "`harness reference train`")
    if generator not in GENERATORS:
        raise InputError(f"--generator {generator!r}: choose one of {', '.join(GENERATORS)}")
    _refuse_seen_seed(document, validation_seed)
    if generator == "best":
        return _validate_and_ship(campaign.best_generator_path(benchmark, seed), generator, document,
                                  thresholds, data_dir, validation_seed, dest, command)
    from reference_model.checkpoint import WEIGHTS_SUFFIX

    with tempfile.TemporaryDirectory(prefix="final-generator-") as scratch:
        source = final_generator(benchmark, seed, document,
                                 Path(scratch) / f"{benchmark}-seed{seed}-final{WEIGHTS_SUFFIX}")
        return _validate_and_ship(source, generator, document, thresholds, data_dir, validation_seed,
                                  dest, command)


def final_generator(campaign_name: str, seed: int, document: dict, path: Path,
                    ema_decay: Optional[float] = None, card: Optional[dict] = None) -> Path:
    """The campaign's generator at its latest checkpoint, which must be an evaluation's, written to
    `path` as a weights file with its card (plus `card`'s entries). With `ema_decay` (a study
    arm's), the moving average of its weights the arm keeps, the generator its "ema" evaluations
    judged."""
    import tensorflow as tf

    from benchmark import campaign
    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    state = campaign.state_dir(campaign_name, seed)
    latest = tf.train.latest_checkpoint(str(state))
    if latest is None:
        raise InputError(f"{state}: no campaign checkpoint; restore it from git "
                         "(git checkout -- benchmark/convergence/state)")
    spec = get_spec(document["benchmark"])
    gan = ReferenceGAN(spec, seed=seed, ema_decay=ema_decay)
    samples, elapsed = tf.Variable(0, dtype=tf.int64), tf.Variable(0.0, dtype=tf.float64)
    status = gan.checkpoint(samples=samples, elapsed=elapsed).read(latest).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError:
        raise InputError(f"{latest}: the checkpoint lacks part of the generator"
                         + (" (no moving average: export the trained weights)" if ema_decay else "")) from None
    point = document["points"][-1] if document["points"] else None
    if point is None or point["samples"] != int(samples.numpy()):
        raise InputError(f"the {campaign_name} seed {seed} checkpoint holds {int(samples.numpy()):,} samples, "
                         f"between evaluations (the latest at {point['samples'] if point else 0:,}); "
                         "train on to the next evaluation, or ship --generator best")
    evaluated = point if ema_decay is None else point.get("ema")
    if evaluated is None:
        raise InputError(f"the {campaign_name} evaluation at {point['samples']:,} samples did not judge a "
                         "moving average; export the trained weights")
    return save_generator(path, gan.generator if ema_decay is None else gan.ema_generator(), spec,
                          {"seed": seed, "samples": point["samples"], "seconds": point["seconds"],
                           "generator": "raw" if ema_decay is None else "ema",
                           "selection_metric": campaign.SELECTION_METRIC,
                           "value": evaluated["metrics"][campaign.SELECTION_METRIC],
                           "recipe": document["recipe"], **(card or {})})


def _refuse_seen_seed(document: dict, validation_seed: int) -> None:
    if validation_seed in (document["recipe"]["train_data_seed"], document["recipe"]["heldout_data_seed"]):
        raise InputError(f"--validation-seed {validation_seed}: the campaign trained or selected on "
                         "that set; pick a seed it never saw")


def _ship_v3_reference(benchmark: str, thresholds, data_dir: Path, validation_seed: int,
                       dest: Optional[Path], command: str) -> ShipOutcome:
    from benchmark import campaign, recipe_study, v3_candidate
    from reference_model.checkpoint import read_card

    source = v3_candidate.reference_path(benchmark)
    if not source.is_file():
        raise InputError(f"{source}: no hold-tested reference exported yet; `harness reference target-v3 "
                         f"--benchmark {benchmark}` exports it once its campaign has trained its window")
    card = read_card(source)
    document = campaign.read_curve(card["campaign"], recipe_study.SEED)
    _refuse_seen_seed(document, validation_seed)
    return _validate_and_ship(source, f"v3 {card['generator']}", document, thresholds, data_dir,
                              validation_seed, dest, command)


def _validate_and_ship(source: Path, chosen: str, document: dict, thresholds, data_dir: Path,
                       validation_seed: int, dest: Optional[Path], command: str) -> ShipOutcome:
    from benchmark import quality
    from reference_model.checkpoint import FROZEN_DIR, load_generator, read_card, sha256_of
    from reference_model.simulator import ensure_dataset

    recipe, seed, benchmark = document["recipe"], document["seed"], document["benchmark"]
    spec, generator = load_generator(source)  # SHA-256 and architecture verified
    validation = ensure_dataset(Path(data_dir) / f"validation-{spec.geometry}-seed{validation_seed}",
                                thresholds.evaluation_events, geometry=spec.geometry,
                                seed=validation_seed, events_per_file=recipe["events_per_file"])
    reference = quality.load_evaluation_showers(validation, thresholds, "validation set")
    report = quality.evaluate_generator(partial(generator, training=False), spec, reference, thresholds)
    source_card = read_card(source)
    card = {key: source_card[key] for key in ("benchmark", "model", "fingerprint", "sha256")}
    card.update({
        "campaign": {"seed": seed, "samples": source_card["samples"], "training_seconds": source_card["seconds"],
                     "chosen": chosen, "selection_metric": source_card["selection_metric"],
                     "selection_value": source_card["value"], "recipe": recipe},
        "validation": {"data_seed": validation_seed, "events": thresholds.evaluation_events,
                       "thresholds": thresholds.version, **report.to_dict()},
        "shipped": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    })
    outcome = ShipOutcome(report=report, source=source, card=card)
    if not report.passed:
        return outcome
    from reference_model.atomic_files import write_file_atomic, write_json_atomic, write_text_atomic
    from reference_model.checkpoint import WEIGHTS_SUFFIX, frozen_checkpoint, sidecar_path

    target = Path(dest or FROZEN_DIR) / frozen_checkpoint(benchmark).name
    write_file_atomic(target, lambda tmp: shutil.copyfile(source, tmp), suffix=WEIGHTS_SUFFIX)
    if sha256_of(target) != card["sha256"]:
        raise InputError(f"{target}: the copy's SHA-256 differs from the campaign's; disk error? ship again")
    write_json_atomic(sidecar_path(target), card, sort_keys=True)
    outcome.weights = target
    outcome.model_card = write_text_atomic(target.with_name(target.name[: -len(WEIGHTS_SUFFIX)] + ".md"),
                                           model_card(card, target.name))
    return outcome


def record_hold_test(weights: Path, outcome, thresholds, record: Path) -> Path:
    """Put a complete hold test (`benchmark.hold_test.HoldTest`) of a shipped generator into its
    card and model card: the fresh-sample pass rate the model card states (issue 22 §3)."""
    from benchmark.hold_test import required_passes
    from reference_model.atomic_files import write_json_atomic, write_text_atomic
    from reference_model.checkpoint import WEIGHTS_SUFFIX, read_card, sidecar_path

    if not outcome.complete:
        raise InputError(f"{record}: the hold test is not complete; finish it before it goes on the model card")
    seeds = outcome.seeds
    card = read_card(weights)
    consecutive = seeds == list(range(seeds[0], seeds[-1] + 1))
    card["hold_test"] = {
        "target": thresholds.version, "seeds": f"{seeds[0]}-{seeds[-1]}" if consecutive else ",".join(map(str, seeds)),
        "judged": len(seeds), "passes": outcome.passes,
        "required": required_passes(len(seeds)), "holds": outcome.holds, "events": outcome.document["events"],
        "record": record.name, "command": outcome.document["command"],
        "date": max(v["judged"] for v in outcome.document["seeds"].values())[:10],
        "failing": {name: {"seeds": n, "worst": outcome.worst(name), "limit": thresholds.limits[name]}
                    for name, n in outcome.failing_counts().items()}}
    write_json_atomic(sidecar_path(weights), card, sort_keys=True)
    return write_text_atomic(weights.with_name(weights.name[: -len(WEIGHTS_SUFFIX)] + ".md"),
                             model_card(card, weights.name))


def _hold_test_line(hold: dict) -> str:
    failing = "; ".join(f"`{name}` on {f['seeds']} ({_number(f['worst'])} at worst against {_number(f['limit'])})"
                        for name, f in hold["failing"].items())
    return (f"* Hold test (`{hold['command']}`, {hold['date']}, record `{hold['record']}`): it passes "
            f"`{hold['target'].split('+')[0]}` on **{hold['passes']} of {hold['judged']}** fresh stand-in sets of "
            f"{hold['events']:,} events (seeds {hold['seeds']}, {hold['passes'] / hold['judged']:.0%}; a target "
            f"that holds needs {hold['required']}): it "
            + ("holds" if hold["holds"] else "does not hold") + (f". Failing: {failing}." if failing else "."))


def model_card(card: dict, weights_name: str) -> str:
    """The Markdown model card: provenance, recipe, data and every metric at the shipped point."""
    from tabulate import tabulate

    from benchmark.quality import version_name

    campaign, validation, recipe = card["campaign"], card["validation"], card["campaign"]["recipe"]
    rows = [(name, _number(m["value"]), _number(m["threshold"]),
             "info" if m["passed"] is None else ("PASS" if m["passed"] else "FAIL"))
            for name, m in validation["metrics"].items()]
    return "\n".join([
        f"# {card['benchmark']} reference generator (`{weights_name}`)",
        "",
        f"* SHA-256 `{card['sha256']}`; architecture fingerprint `{card['fingerprint']}` "
        f"(model `{card['model']}`). The loader refuses the file if either differs.",
        f"* Trained by the reference campaign, seed {campaign['seed']}: {campaign['samples']:,} samples "
        f"in {campaign['training_seconds'] / 3600:.2f} h of training; "
        + _chosen_text(campaign)
        + f" (`{campaign['selection_metric']}` {campaign['selection_value']:.4g} on the held-out set).",
        f"* Recipe: {recipe['precision']}, per-rank batch {recipe['per_rank_batch']}, learning rate "
        f"{recipe['learning_rate']:g}{_decay_text(recipe)}, {recipe['warmup_epochs']} warm-up epochs; evaluated "
        f"every {recipe['eval_every_samples']:,} samples; budget {recipe['budget_samples']:,} samples"
        + (f"; moving average of the generator over {recipe['ema_horizon_samples']:,} samples"
           if campaign.get("chosen", "").endswith("ema") else "") + ".",
        f"* Data (stand-in simulator, regenerated from seeds, never committed): training "
        f"{recipe['train_events']:,} events (seed {recipe['train_data_seed']}), held-out "
        f"{recipe['heldout_events']:,} events (seed {recipe['heldout_data_seed']}).",
        f"* Validation on a fresh stand-in set it never saw: seed {validation['data_seed']}, "
        f"{validation['events']:,} events, target `{validation['thresholds']}`: "
        f"**{'PASSED' if validation['passed'] else 'FAILED'}**"
        + ("." if validation.get("submittable", True) else
           f" (`{version_name(validation['thresholds'])}` is not submittable: a release candidate until a "
           "second seed reaches it, `harness reference reproduce`; until then the main job validates and "
           "gates against it, outside the results tree)."),
        *([_hold_test_line(card["hold_test"])] if "hold_test" in card else []),
        f"* Shipped {card['shipped']} by `{card['command'] or 'benchmark.ship.ship_reference'}`.",
        "",
        tabulate(rows, headers=("metric", "value", "threshold", "result"), tablefmt="github"),
        "",
    ])


def _decay_text(recipe: dict) -> str:
    decay = recipe.get("lr_decay")
    if not decay:
        return ""
    return (f" decayed by a cosine to {decay['final_factor']:g}x between {decay['start_samples']:,} and "
            f"{decay['end_samples']:,} samples")


def _chosen_text(campaign: dict) -> str:
    chosen = campaign.get("chosen", "best")
    if chosen.startswith("v3"):
        averaged = "the moving average of its weights" if chosen.endswith("ema") else "its trained weights"
        arm = campaign["recipe"].get("arm")
        whose = (f"the recipe study's winning arm `{arm}`" if arm else
                 "the campaign of the recipe study's pick")
        return f"{whose} at the end of its window, {averaged} (the {'v3' if arm else 'hold-tested'} reference)"
    return "its generator at its latest evaluation" if chosen == "final" else "the best of its evaluations"


def _number(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4g}"
