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

VALIDATION_DATA_SEED = 3001  # the shipping validation set: neither campaign set's seed
GENERATORS = ("best", "final")


@dataclass
class ShipOutcome:
    """The validation of the campaign's best generator, and what was written (None: nothing)."""

    report: Any  # benchmark.quality.QualityReport
    source: Path
    card: dict
    weights: Optional[Path] = None
    model_card: Optional[Path] = None


def ship_reference(benchmark: str, seed: int, thresholds, data_dir: Path,
                   validation_seed: int = VALIDATION_DATA_SEED, dest: Optional[Path] = None,
                   command: str = "", generator: str = "best") -> ShipOutcome:
    """Validate a campaign generator (`best` or `final`) on a fresh stand-in set; ship it if it passes."""
    from benchmark import campaign

    document = campaign.read_curve(benchmark, seed)
    if document is None or document.get("best") is None:
        raise InputError(f"no evaluated generator for {benchmark} seed {seed} yet; train it with "
                         "`harness reference train`")
    if generator not in GENERATORS:
        raise InputError(f"--generator {generator!r}: choose one of {', '.join(GENERATORS)}")
    if validation_seed in (document["recipe"]["train_data_seed"], document["recipe"]["heldout_data_seed"]):
        raise InputError(f"--validation-seed {validation_seed}: the campaign trained or selected on "
                         "that set; pick a seed it never saw")
    if generator == "best":
        return _validate_and_ship(campaign.best_generator_path(benchmark, seed), generator, document,
                                  thresholds, data_dir, validation_seed, dest, command)
    with tempfile.TemporaryDirectory(prefix="final-generator-") as scratch:
        source = final_generator(benchmark, seed, document, Path(scratch))
        return _validate_and_ship(source, generator, document, thresholds, data_dir, validation_seed,
                                  dest, command)


def final_generator(benchmark: str, seed: int, document: dict, directory: Path) -> Path:
    """The campaign's generator at its latest checkpoint, which must be an evaluation's, written to
    `directory` as a weights file with its card."""
    import tensorflow as tf

    from benchmark import campaign
    from reference_model.checkpoint import WEIGHTS_SUFFIX, save_generator
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    latest = tf.train.latest_checkpoint(str(campaign.state_dir(benchmark, seed)))
    if latest is None:
        raise InputError(f"{campaign.state_dir(benchmark, seed)}: no campaign checkpoint; restore it from "
                         "git (git checkout -- benchmark/convergence/state)")
    spec = get_spec(benchmark)
    gan = ReferenceGAN(spec, seed=seed)
    samples, elapsed = tf.Variable(0, dtype=tf.int64), tf.Variable(0.0, dtype=tf.float64)
    gan.checkpoint(samples=samples, elapsed=elapsed).read(latest).expect_partial()
    point = document["points"][-1] if document["points"] else None
    if point is None or point["samples"] != int(samples.numpy()):
        raise InputError(f"the {benchmark} seed {seed} checkpoint holds {int(samples.numpy()):,} samples, "
                         f"between evaluations (the latest at {point['samples'] if point else 0:,}); "
                         "train on to the next evaluation, or ship --generator best")
    return save_generator(directory / f"{benchmark}-seed{seed}-final{WEIGHTS_SUFFIX}", gan.generator, spec,
                          {"seed": seed, "samples": point["samples"], "seconds": point["seconds"],
                           "selection_metric": campaign.SELECTION_METRIC,
                           "value": point["metrics"][campaign.SELECTION_METRIC],
                           "recipe": document["recipe"]})


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
        + ("its generator at its latest evaluation" if campaign.get("chosen") == "final"
           else "the best of its evaluations")
        + f" (`{campaign['selection_metric']}` {campaign['selection_value']:.4g} on the held-out set).",
        f"* Recipe: {recipe['precision']}, per-rank batch {recipe['per_rank_batch']}, learning rate "
        f"{recipe['learning_rate']:g}, {recipe['warmup_epochs']} warm-up epochs; evaluated every "
        f"{recipe['eval_every_samples']:,} samples; budget {recipe['budget_samples']:,} samples.",
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
        f"* Shipped {card['shipped']} by `{card['command'] or 'benchmark.ship.ship_reference'}`.",
        "",
        tabulate(rows, headers=("metric", "value", "threshold", "result"), tablefmt="github"),
        "",
    ])


def _number(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4g}"
