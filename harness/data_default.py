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


@dataclass(frozen=True)
class TrainingData:
    """What a run's ranks read, absolute: the training files and the held-out set the quality
    gate evaluates (None: the held-out split of `train`, --train-fraction)."""

    train: Path
    heldout: Optional[Path] = None


def default_data_dir(results_root: Path, geometry: str, seed: int) -> Path:
    """The folder of the default stand-in set made from `seed`."""
    return results_root / DATA_DIR / f"standin-{geometry}-seed{seed}"


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
        data = TrainingData(Path(request.data), Path(request.heldout_data) if request.heldout_data else None)
    elif request.mode in TO_TARGET and not request.smoke:
        data = reference_training_data(request)
    else:
        geometry = get_spec(request.benchmark).geometry
        data = TrainingData(default_data_dir(Path(request.results), geometry, request.seed))
        if not request.dry_run:
            ensure_standin(data.train, geometry, request.seed)
    data = TrainingData(data.train.resolve(), data.heldout.resolve() if data.heldout else None)
    if not request.dry_run:
        from reference_model.data import list_files

        for directory in filter(None, (data.train, data.heldout)):
            list_files(directory)
    if request.data and request.mode in TO_TARGET and data.train.exists():  # the reference set fills them
        require_evaluable(request, data)
    return data


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
