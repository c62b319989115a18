"""The default data of a run: stand-in showers made once under the results root and reused.

A run without `--data` must still run something real. A run trained to the target (tta,
throughput) gets the benchmark's reference data set (`benchmark.recipe.reference_data`): the
training and held-out stand-in sets its target and reference convergence points were measured
on, from their recorded seeds, whatever the run's own seed, so every run of a submission and
every RCP run train and are judged on the same showers. Any other run gets a small stand-in set
in the real CLIC layout. A marker file written last makes an interrupted generation redo itself
instead of being reused half-written, and runs sharing the root (on any nodes) wait for the one
making it (`reference_model.simulator.ensure_dataset`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from benchmark.vocabulary import THROUGHPUT, TTA
from reference_model.specs import get_spec

if TYPE_CHECKING:
    from harness.run_request import RunRequest

DEFAULT_EVENTS = {"fixed": 4000, "angle": 1000}
TO_TARGET = (TTA, THROUGHPUT)  # modes trained until the quality target passes
EVENTS_PER_FILE = {"fixed": 500, "angle": 250}
DATA_DIR = "data"  # under the results root: the stand-in sets made there (never committed)
EPOCH_MIN_STEPS = 10  # the fewest steps per epoch a default set gives at the run's global batch


@dataclass(frozen=True)
class TrainingData:
    """What a run's ranks read, absolute: the training files and the held-out set the quality
    gate evaluates (None: the held-out split of `train`, --train-fraction)."""

    train: Path
    heldout: Optional[Path] = None


def default_data_dir(results_root: Path, geometry: str, seed: int, events: Optional[int] = None) -> Path:
    """The folder of the default stand-in set made from `seed`; one of another size than the
    embedded default says its size."""
    size = f"-{events}" if events and events != DEFAULT_EVENTS[geometry] else ""
    return results_root / DATA_DIR / f"standin-{geometry}{size}-seed{seed}"


def scaled_events(request: RunRequest) -> int:
    """Events of the default set of a run not trained to the target: the embedded default, or at
    a global batch where that trains fewer than EPOCH_MIN_STEPS steps per epoch, enough for them
    (a stand-in stream is prefix-stable, so the larger set begins with the smaller one)."""
    geometry = get_spec(request.benchmark).geometry
    per_file = EVENTS_PER_FILE[geometry]
    needed = EPOCH_MIN_STEPS * request.global_batch / request.train_fraction
    return max(DEFAULT_EVENTS[geometry], per_file * math.ceil(needed / per_file))


def ensure_standin(directory: Path, geometry: str, seed: int, events: int | None = None) -> Path:
    """Make the stand-in set in `directory` unless a complete one is already there."""
    from reference_model.simulator import ensure_dataset

    return ensure_dataset(directory, events or DEFAULT_EVENTS[geometry], geometry=geometry, seed=seed,
                          events_per_file=EVENTS_PER_FILE[geometry])


def training_data(request: RunRequest) -> TrainingData:
    """The data the ranks read (they may start in another directory or on another node):
    `--data` (and `--heldout-data`) when given; else, for a run trained to the target, the
    benchmark's reference data set, and for any other run the embedded default set, each made
    here unless it is a dry run. A wrong --data fails here, before a result number is taken, and
    so does data whose held-out set cannot fill the target's energy bins."""
    if request.data:
        data = given_data(request)
    elif request.mode in TO_TARGET and not request.smoke:
        data = reference_training_data(request)
    else:
        geometry = get_spec(request.benchmark).geometry
        events = scaled_events(request)
        data = TrainingData(default_data_dir(Path(request.results), geometry, request.seed, events))
        if not request.dry_run:
            ensure_standin(data.train, geometry, request.seed, events)
    data = TrainingData(data.train.resolve(), data.heldout.resolve() if data.heldout else None)
    if not request.dry_run:
        from reference_model.data import list_files

        for directory in filter(None, (data.train, data.heldout)):
            list_files(directory)
    if request.data and data.train.exists():  # the default sets are sized for the run
        require_usable(request, data)
    return data


def given_data(request: RunRequest) -> TrainingData:
    """--data and --heldout-data as the request gives them (it gives --data)."""
    return TrainingData(Path(request.data), Path(request.heldout_data) if request.heldout_data else None)


def check_given_data(request: RunRequest) -> None:
    """`require_usable` on --data where it can be read here: what a batch job or a scaling series
    checks before it is written or its first point runs elsewhere."""
    if request.data and Path(request.data).exists():
        require_usable(request, given_data(request))


def require_usable(request: RunRequest, data: TrainingData) -> None:
    """The checks on --data that can be made before anything is launched or submitted: a step
    per epoch at this scale and, for a run trained to the target, a held-out set that fills the
    target's energy bins."""
    require_steps(request, data)
    if request.mode in TO_TARGET:
        require_evaluable(request, data)


def require_steps(request: RunRequest, data: TrainingData) -> None:
    """Refuse, in one line naming the data and the fix, training data that gives each rank no
    full step per epoch at this scale: the ranks would fail only after their launch (or after a
    batch job's wait in the queue)."""
    from reference_model.data import list_files, split_files
    from reference_model.errors import InputError
    from reference_model.pipeline import events_per_rank

    files = list_files(data.train)
    if data.heldout is None:  # the trainer holds out the files after --train-fraction
        files, _ = split_files(files, request.train_fraction)
    ranks = request.ranks * request.emulate_ranks
    per_rank = events_per_rank(files, ranks)
    if per_rank < request.per_rank_batch:
        raise InputError(f"--data {request.data}: {per_rank * ranks:,} training events give each of {ranks:,} "
                         f"ranks {per_rank} per epoch, fewer than one batch of {request.per_rank_batch}; "
                         f"make a larger set (harness data synth --events N) or run without --data")


def reference_training_data(request: RunRequest) -> TrainingData:
    """The benchmark's reference data set under `<results>/data/`, made once (not on a dry run)."""
    from benchmark.campaign import campaign_data_dirs, ensure_campaign_data
    from benchmark.recipe import reference_data

    reference = reference_data(request.benchmark)
    root = Path(request.results) / DATA_DIR
    train, heldout = (campaign_data_dirs if request.dry_run else ensure_campaign_data)(reference, root)
    return TrainingData(train, heldout)


def require_evaluable(request: RunRequest, data: TrainingData) -> None:
    """Refuse, in one line naming the data and the fix, a run trained to the target whose held-out
    set cannot fill the target's energy bins: it could never finish."""
    from benchmark import quality
    from reference_model.data import list_files, split_files
    from reference_model.errors import InputError

    thresholds = quality.load_thresholds(request.benchmark, smoke=request.smoke)
    if data.heldout is not None:
        held_out, what = list_files(data.heldout), "--heldout-data"
    else:
        _, held_out = split_files(list_files(data.train), request.train_fraction)
        what = "the held-out split of --data"
    try:
        quality.require_fillable(held_out, thresholds, what)
    except InputError as err:
        raise InputError(f"{err}; or run without --data, which makes the benchmark's reference data set "
                         "(the one its target was measured on)") from None
