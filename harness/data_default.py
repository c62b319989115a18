"""The embedded default data set: stand-in showers made once under the results root and reused.

A run without `--data` must still run something real; it gets a small stand-in set in the
real CLIC layout. A marker file written last makes an interrupted generation redo itself
instead of being reused half-written, and runs sharing the root (on any nodes) wait for the
one making it (`reference_model.simulator.ensure_dataset`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.vocabulary import THROUGHPUT, TTA
from reference_model.specs import get_spec

if TYPE_CHECKING:
    from harness.run_request import RunRequest

DEFAULT_EVENTS = {"fixed": 4000, "angle": 1000}
TO_TARGET = (TTA, THROUGHPUT)  # modes trained until the quality target passes
EVENTS_PER_FILE = {"fixed": 500, "angle": 250}


def default_data_dir(results_root: Path, geometry: str, seed: int, events: int | None = None) -> Path:
    """The default set's folder; a set of another size than the embedded default says its size."""
    size = f"-{events}" if events else ""
    return results_root / "data" / f"standin-{geometry}{size}-seed{seed}"


def time_to_accuracy_events(request: RunRequest) -> int:
    """The default set of a run trained to the target: its held-out split (the files after
    --train-fraction) must fill every energy bin the target compares. The target's
    `evaluation_events` fill them in the stand-in's energy spectrum, so the set holds that many
    over the held-out fraction, with a quarter more for the split's rounding to whole files."""
    from benchmark import quality

    thresholds = quality.load_thresholds(request.benchmark, smoke=request.smoke)
    geometry = get_spec(request.benchmark).geometry
    per_file = EVENTS_PER_FILE[geometry]
    events = 1.25 * thresholds.evaluation_events / (1.0 - request.train_fraction)
    return max(DEFAULT_EVENTS[geometry], per_file * math.ceil(events / per_file))


def ensure_standin(directory: Path, geometry: str, seed: int, events: int | None = None) -> Path:
    """Make the stand-in set in `directory` unless a complete one is already there."""
    from reference_model.simulator import ensure_dataset

    return ensure_dataset(directory, events or DEFAULT_EVENTS[geometry], geometry=geometry, seed=seed,
                          events_per_file=EVENTS_PER_FILE[geometry])


def training_data(request: RunRequest) -> Path:
    """The data the ranks read, absolute (they may start in another directory or on another
    node): `--data` when given, else the default stand-in set for the benchmark's geometry
    (made here unless it is a dry run), for a run trained to the target one whose held-out split
    fills the target's energy bins. A wrong --data fails here, before a result number is taken,
    and so does data whose held-out split cannot fill them."""
    if request.data:
        data = Path(request.data)
    else:
        geometry = get_spec(request.benchmark).geometry
        events = time_to_accuracy_events(request) if request.mode in TO_TARGET else None
        data = default_data_dir(Path(request.results), geometry, request.seed, events)
        if not request.dry_run:
            ensure_standin(data, geometry, request.seed, events)
    data = data.resolve()
    if not request.dry_run:
        from reference_model.data import list_files

        list_files(data)
    if request.data and request.mode in TO_TARGET and data.exists():  # the default is sized to fill them
        require_evaluable(request, data)
    return data


def require_evaluable(request: RunRequest, data: Path) -> None:
    """Refuse, in one line naming the data and the fix, a run trained to the target whose held-out
    split cannot fill the target's energy bins: it could never finish."""
    from benchmark import quality
    from reference_model.data import list_files, split_files
    from reference_model.errors import InputError

    thresholds = quality.load_thresholds(request.benchmark, smoke=request.smoke)
    _, held_out = split_files(list_files(data), request.train_fraction)
    try:
        quality.require_fillable(held_out, thresholds, "the held-out split of --data")
    except InputError as err:
        raise InputError(f"{err}; or run without --data, which makes a stand-in set the target can "
                         "evaluate on") from None
