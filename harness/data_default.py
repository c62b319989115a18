"""The embedded default data set: stand-in showers made once under the results root and reused.

A run without `--data` must still run something real; it gets a small stand-in set in the
real CLIC layout. A marker file written last makes an interrupted generation redo itself
instead of being reused half-written, and runs sharing the root (on any nodes) wait for the
one making it (`reference_model.simulator.ensure_dataset`).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reference_model.specs import get_spec

if TYPE_CHECKING:
    from harness.run_request import RunRequest

DEFAULT_EVENTS = {"fixed": 4000, "angle": 1000}
EVENTS_PER_FILE = {"fixed": 500, "angle": 250}


def default_data_dir(results_root: Path, geometry: str, seed: int) -> Path:
    return results_root / "data" / f"standin-{geometry}-seed{seed}"


def ensure_standin(directory: Path, geometry: str, seed: int, events: int | None = None) -> Path:
    """Make the stand-in set in `directory` unless a complete one is already there."""
    from reference_model.simulator import ensure_dataset

    return ensure_dataset(directory, events or DEFAULT_EVENTS[geometry], geometry=geometry, seed=seed,
                          events_per_file=EVENTS_PER_FILE[geometry])


def training_data(request: RunRequest) -> Path:
    """The data the ranks read, absolute (they may start in another directory or on another
    node): `--data` when given, else the default stand-in set for the benchmark's geometry
    (made here unless it is a dry run). A wrong --data fails here, before a result number is taken."""
    if request.data:
        data = Path(request.data)
    else:
        geometry = get_spec(request.benchmark).geometry
        data = default_data_dir(Path(request.results), geometry, request.seed)
        if not request.dry_run:
            ensure_standin(data, geometry, request.seed)
    data = data.resolve()
    if not request.dry_run:
        from reference_model.data import list_files

        list_files(data)
    return data
