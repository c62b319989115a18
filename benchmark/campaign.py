"""The reference training campaign: the frozen generator trained, across many sessions, to a fixed
sample budget with one closed recipe, so that the benchmark's target is what a reference reaches.

A campaign is one seed of one benchmark. Its whole state lives in the repository, under
`benchmark/convergence/`:

- `state/<benchmark>-seed<S>/`: one TensorFlow checkpoint (generator, discriminator, both
  optimisers, the step's RNG, epoch, step within the epoch, samples, training seconds), replaced
  on every save, so a session on a new machine resumes exactly where the last one stopped;
- `state/<benchmark>-seed<S>-best.weights.h5` (+ sidecar): the best generator so far;
- `<benchmark>-reference-seed<S>.json`: the recipe (`benchmark.recipe.CAMPAIGNS`), the data
  recipe, every evaluation with all its metrics, and one entry per session (when, where, samples, rate).

The training data are never committed: the stand-in sets are regenerated from their recorded
seeds. Training itself is `benchmark.trainer.train`, the same loop the tta benchmark runs, with
one "epoch" per evaluation interval (a fresh shuffle of the whole training set each time).
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from benchmark.provenance import suite_commit
from benchmark.recipe import CampaignRecipe, ReferenceData
from reference_model.shared_lock import SharedLock

CONVERGENCE_DIR = Path(__file__).with_name("convergence")
REFERENCE_SEED = 1  # the campaign whose best generator becomes the shipped reference
SELECTION_METRIC = "objective.total"  # the 3DGAN papers' objective; lower is better


def curve_path(benchmark: str, seed: int) -> Path:
    return CONVERGENCE_DIR / f"{benchmark}-reference-seed{seed}.json"


def state_dir(benchmark: str, seed: int) -> Path:
    return CONVERGENCE_DIR / "state" / f"{benchmark}-seed{seed}"


def best_generator_path(benchmark: str, seed: int) -> Path:
    return CONVERGENCE_DIR / "state" / f"{benchmark}-seed{seed}-best.weights.h5"


def session_lock(benchmark: str, seed: int) -> SharedLock:
    """Held by the one session that trains a campaign: a second session of the same seed, on any
    node sharing the repository, is refused with one line instead of training the same state."""
    return SharedLock(state_dir(benchmark, seed), "training", wait=False)


def read_curve(benchmark: str, seed: int) -> Optional[dict]:
    """The campaign's curve document, or None before its first session."""
    from reference_model.errors import InputError

    path = curve_path(benchmark, seed)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: corrupt campaign curve ({err}); restore it from git "
                         "(git checkout -- benchmark/convergence)") from None


class Curve:
    """The campaign's record: recipe, data, sessions and every evaluation, saved after each change."""

    def __init__(self, recipe: CampaignRecipe, seed: int) -> None:
        self.path = curve_path(recipe.campaign_name, seed)
        document = read_curve(recipe.campaign_name, seed)
        if document is not None:
            if document.get("recipe") != asdict(recipe):
                from reference_model.errors import InputError
                raise InputError(f"{self.path}: the campaign was started with another recipe; a "
                                 "campaign's recipe never changes (start a new seed, or restore the recipe)")
            self.document = document
        else:
            self.document = {"benchmark": recipe.benchmark, "seed": seed, "recipe": asdict(recipe),
                             "selection_metric": SELECTION_METRIC, "best": None,
                             "sessions": [], "points": []}

    @property
    def points(self) -> list[dict]:
        return self.document["points"]

    @property
    def best_value(self) -> float:
        best = self.document.get("best")
        return float("inf") if best is None else float(best["value"])

    def start_session(self, command: str, samples: int, system: str) -> dict:
        session = {"started": _now(), "host": socket.gethostname(), "system": system, "command": command,
                   "suite_commit": suite_commit(),
                   "samples_at_start": samples, "samples_at_stop": samples, "stopped": None,
                   "wall_seconds": 0.0, "samples_per_second": None}
        self.document["sessions"].append(session)
        self.save()
        return session

    def save(self) -> None:
        from reference_model.atomic_files import write_json_atomic

        write_json_atomic(self.path, self.document)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def campaign_data_dirs(recipe: CampaignRecipe | ReferenceData, data_dir: Path) -> tuple[Path, Path]:
    """Where the training and held-out stand-in sets of `recipe` live under `data_dir`."""
    from reference_model.specs import get_spec

    geometry = get_spec(recipe.benchmark).geometry
    return (data_dir / f"train-{geometry}-seed{recipe.train_data_seed}",
            data_dir / f"heldout-{geometry}-seed{recipe.heldout_data_seed}")


def ensure_campaign_data(recipe: CampaignRecipe | ReferenceData, data_dir: Path) -> tuple[Path, Path]:
    """The training and held-out stand-in sets, made from their recorded seeds unless present."""
    from reference_model.simulator import ensure_dataset
    from reference_model.specs import get_spec

    geometry = get_spec(recipe.benchmark).geometry
    train_dir, heldout_dir = campaign_data_dirs(recipe, data_dir)
    train = ensure_dataset(train_dir, recipe.train_events, geometry=geometry, seed=recipe.train_data_seed,
                           events_per_file=recipe.events_per_file)
    heldout = ensure_dataset(heldout_dir, recipe.heldout_events, geometry=geometry, seed=recipe.heldout_data_seed,
                             events_per_file=recipe.events_per_file)
    return train, heldout


def reproduction_target(benchmark: str, recipe: dict):
    """The release candidate a second seed of `recipe` (as a curve records it) has to reach (a
    `quality.Thresholds`), or None: no candidate written yet, or one set by another recipe."""
    from benchmark import quality
    from benchmark.reference_target import release_candidate_path
    from benchmark.v3_candidate import candidate_path

    for path in (candidate_path(benchmark), release_candidate_path(benchmark)):  # newest first
        if path.is_file():
            candidate = quality.load_thresholds(benchmark, path=path)
            if candidate.document.get("calibration", {}).get("campaign", {}).get("recipe") == recipe:
                return candidate
    return None


def _stop_target(recipe: CampaignRecipe, seed: int):
    """The thresholds (a `quality.Thresholds`) whose first pass ends this seed's campaign, and the
    generator they judge ("raw" or "ema"); (None, "raw") for a campaign that trains its budget.
    A second seed stops at the release candidate its recipe set (`reproduction_target`); a
    closed-rule study run (not `recipe.reproduces`) at the target in force it records."""
    if not recipe.reproduces:
        from benchmark import quality
        from reference_model.errors import InputError

        target = quality.load_thresholds(recipe.benchmark, smoke=recipe.smoke)
        if target.version != recipe.target:
            raise InputError(f"{recipe.campaign_name} seed {seed} is judged against {recipe.target}, but the "
                             f"target in force is {target.version}; runs against a replaced target are re-run "
                             "(docs/closed-rule-study.md)")
        return target, recipe.judged_generator
    if seed == REFERENCE_SEED:
        return None, "raw"
    from benchmark.reference_target import judged_generator

    target = reproduction_target(recipe.benchmark, asdict(recipe))
    return target, "raw" if target is None else judged_generator(target)


def _refuse_finished(recipe: CampaignRecipe, seed: int, curve: Curve, target) -> None:
    """A one-line error for a campaign with nothing left to train: a second seed that reproduced
    its target, or a closed-rule study run that converged or diverged (never resumed)."""
    from reference_model.errors import InputError

    if recipe.reproduces:
        if target is None:
            return
        from benchmark.reference_target import judge_reproduction

        verdict = judge_reproduction(target, curve.document)
        if verdict.reproduced:
            raise InputError(f"{recipe.benchmark} seed {seed} already reproduced {target.name} at "
                             f"{verdict.first_pass:,} samples; nothing left to train (promote it: "
                             "harness reference reproduce --promote)")
        return
    passed = first_pass(curve.document, target.limits, recipe.judged_generator)
    ending = f"converged at {passed:,} samples" if passed is not None else divergence(curve.document)
    if ending is not None:
        raise InputError(f"{recipe.campaign_name} seed {seed} has ended ({ending}); nothing left to train")


def first_pass(curve: dict, limits: dict[str, float], generator: str) -> Optional[int]:
    """Samples of the curve's first evaluation whose `generator` ("raw" or "ema") passes every
    limit; None if none has."""
    from benchmark.reference_target import failing_limits

    return next((samples for samples, failing in failing_limits(curve["points"], limits, generator)
                 if not failing), None)


def divergence(curve: dict) -> Optional[str]:
    """Why the campaign diverged, as its session recorded it; None if it has not."""
    return next((s["reason"] for s in curve["sessions"] if (s.get("reason") or "").startswith("diverged")), None)


def _epochs(recipe: CampaignRecipe, seed: int, until_samples: Optional[int]) -> int:
    """Evaluation intervals to train to: the budget (the reference seed's, or the larger one a
    second seed has to reproduce in), or fewer when the session stops at `until_samples`: then at
    the last evaluation within it, so the checkpoint a segment leaves is an evaluated generator."""
    epochs = recipe.epochs if seed == REFERENCE_SEED or not recipe.reproduces else recipe.reproduction_epochs
    if until_samples is not None:
        epochs = min(epochs, until_samples // recipe.eval_every_samples)
    return epochs


def _moving_average_evaluator(recipe: CampaignRecipe, heldout_data: Path, seed: int):
    """For a study arm, a function of the trained GAN that judges its generator's moving average
    on the same held-out showers and latents as the generator itself; None for other campaigns."""
    if recipe.train_options().get("ema_decay") is None:
        return None
    from functools import partial

    from benchmark import quality
    from reference_model.data import list_files
    from reference_model.specs import get_spec

    spec = get_spec(recipe.benchmark)
    thresholds = quality.load_thresholds(recipe.benchmark, smoke=recipe.smoke)
    reference = quality.load_evaluation_showers(list_files(heldout_data), thresholds)

    def evaluate(gan) -> dict:
        report = quality.evaluate_generator(partial(gan.ema_generator(), training=False), spec,
                                            reference, thresholds, seed=seed)
        return _verdict(report.to_dict())

    return evaluate


def _verdict(summary: dict) -> dict:
    """What a curve keeps of a quality report's summary: objective, verdict and every metric."""
    return {"objective": summary["objective"], "passed": summary["passed"], "failed": len(summary["failed"]),
            "metrics": {name: entry["value"] for name, entry in summary["metrics"].items()}}


def train_config(recipe: CampaignRecipe, seed: int, train_data: Path, heldout_data: Path):
    """How a campaign of `recipe` trains seed `seed` (`benchmark.trainer.TrainConfig`): one trainer
    epoch per evaluation interval, the gate never stopping it (the campaign's own hook does), the
    time it was stopped not counted. A session sets its state, budget, hours and threads."""
    from benchmark.trainer import TrainConfig
    from benchmark.vocabulary import TTA

    return TrainConfig(
        benchmark=recipe.benchmark, mode=TTA, data=train_data, eval_data=heldout_data,
        checkpoint_dir=Path("."), per_rank_batch=recipe.per_rank_batch, seed=seed,
        precision=recipe.precision, base_learning_rate=recipe.learning_rate,
        warmup_epochs=recipe.warmup_epochs, max_steps_per_epoch=recipe.steps_per_interval,
        stop_at_target=False, keep_checkpoints=1, smoke=recipe.smoke, count_suspended_time=False,
        **recipe.train_options())


def run_campaign(recipe: CampaignRecipe, seed: int, hours: float, train_data: Path, heldout_data: Path,
                 logger, command: str, system: str, threads: int = 0,
                 until_samples: Optional[int] = None) -> dict[str, Any]:
    """Train the campaign for `hours` (or to its budget: the reference seed's, or for another seed
    the REPRODUCTION_FACTOR x larger one it has to reach the reference's target in), then
    checkpoint and stop. A second seed stops at its first evaluation that passes every limit of
    the release candidate (`reproduction_target`): the reproduction is then done, and a seed that
    has done it is not trained further. A closed-rule study run (`recipe.ScaleRecipe`) stops the
    same way at the target in force, and once it has converged or diverged it is not trained again.

    SIGTERM, or the end of `hours` (counted from here, data loading included), stops it at the
    next step with a checkpoint; nothing trained is lost. `logger` is the MLPerf logger of this
    session (benchmark.trainer.RunLogger). `until_samples` stops it earlier, at its last
    evaluation within that many samples (a segment of a recipe study). A recipe with a moving
    average (`recipe.ScheduledRecipe`) also evaluates its generator's moving average at every
    evaluation, recorded as the point's "ema". `system` names the machine the session runs on
    (harness sysinfo's system name): a campaign spans sessions on different CPUs, and its rates
    compare only within one. Returns the session's entry of the curve.
    """
    from benchmark.distributed import Communicator
    from benchmark.quality import version_name
    from benchmark.trainer import train
    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec

    spec = get_spec(recipe.benchmark)
    state = state_dir(recipe.campaign_name, seed)
    curve = Curve(recipe, seed)
    resume = (state / "checkpoint").is_file()
    if curve.points and not resume:
        from reference_model.errors import InputError
        raise InputError(f"{curve.path} records evaluations but {state} holds no checkpoint; restore "
                         "the state from git (git checkout -- benchmark/convergence/state)")
    target, judged = _stop_target(recipe, seed)
    if curve.points:
        _refuse_finished(recipe, seed, curve, target)
    config = replace(train_config(recipe, seed, train_data, heldout_data),
                     checkpoint_dir=state, epochs=_epochs(recipe, seed, until_samples), resume=resume,
                     stop_after_s=hours * 3600.0, intra_op_threads=threads, inter_op_threads=1 if threads else 0)
    evaluate_average = _moving_average_evaluator(recipe, heldout_data, seed)
    sessions = curve.document["sessions"]
    samples_at_start = sessions[-1]["samples_at_stop"] if sessions else 0
    session = curve.start_session(command, samples_at_start, system)
    wall_start = time.monotonic()

    def on_evaluation(epoch: int, samples: int, seconds: float, report, gan) -> Optional[str]:
        summary = report.to_dict()
        value = report.value(SELECTION_METRIC)
        point = {"epoch": epoch, "samples": samples, "seconds": round(seconds, 3), "time": _now(),
                 **_verdict(summary), "thresholds": summary["thresholds"]}
        if evaluate_average is not None:
            point["ema"] = evaluate_average(gan)
        curve.points.append(point)
        if value < curve.best_value:
            save_generator(best_generator_path(recipe.campaign_name, seed), gan.generator, spec,
                           {"seed": seed, "samples": samples, "seconds": round(seconds, 3),
                            "selection_metric": SELECTION_METRIC, "value": value,
                            "recipe": asdict(recipe)})
            curve.document["best"] = {"samples": samples, "metric": SELECTION_METRIC, "value": value}
        session.update(samples_at_stop=samples, wall_seconds=round(time.monotonic() - wall_start, 1))
        curve.save()
        gated = sum(entry["threshold"] is not None for entry in summary["metrics"].values())
        against_target, stop_reason = "", None
        if target is not None:
            from benchmark.reference_target import failing_limits

            [(_, failing)] = failing_limits([point], target.limits, judged)
            against_target = f", {len(failing)} of {len(target.limits)} {target.name} limits failing"
            if not failing:
                stop_reason = f"seed {seed} {'reproduced' if recipe.reproduces else 'reached'} {target.name} " \
                              f"at {samples:,} samples"
        print(f"[campaign] {samples:,} samples ({seconds / 3600:.2f} h of training): objective "
              f"{value:.4g}, profile L1 {point['metrics'].get('profile_l1', float('nan')):.4f}, "
              f"{point['failed']} of {gated} {version_name(report.thresholds_version)} limits failing"
              f"{against_target}; best {curve.best_value:.4g}", flush=True)
        if stop_reason:
            print(f"[campaign] {stop_reason}: " + ("the reproduction is done, stopping; promote it with "
                                                   "`harness reference reproduce --promote`" if recipe.reproduces
                                                   else "converged, stopping"), flush=True)
        return stop_reason

    result = train(config, Communicator(), logger, on_evaluation=on_evaluation)
    wall = time.monotonic() - wall_start
    trained = result.samples - session["samples_at_start"]
    session.update(stopped=_now(), samples_at_stop=result.samples, wall_seconds=round(wall, 1),
                   samples_per_second=round(trained / wall, 3) if wall > 0 else None,
                   training_samples_per_second=result.steady_samples_per_second, reason=result.reason)
    curve.save()
    return session
