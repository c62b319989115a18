"""The embedded default data set: stand-in showers made once under the results root and reused.

A run without `--data` must still run something real; it gets a small stand-in set in the
real CLIC layout. A marker file written last makes an interrupted generation redo itself
instead of being reused half-written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from reference_model.specs import get_spec

DEFAULT_EVENTS = {"fixed": 4000, "angle": 1000}
EVENTS_PER_FILE = {"fixed": 500, "angle": 250}


def default_data_dir(results_root: Path, geometry: str, seed: int) -> Path:
    return results_root / "data" / f"standin-{geometry}-seed{seed}"


def ensure_standin(directory: Path, geometry: str, seed: int, events: int | None = None) -> Path:
    """Make the stand-in set in `directory` unless a complete one is already there."""
    from reference_model.simulator import ensure_dataset

    return ensure_dataset(directory, events or DEFAULT_EVENTS[geometry], geometry=geometry, seed=seed,
                          events_per_file=EVENTS_PER_FILE[geometry])


def ensure_data(args: argparse.Namespace) -> Path:
    """`--data` when given, else the default stand-in set for the benchmark's geometry."""
    if args.data:
        return Path(args.data)
    geometry = get_spec(args.benchmark).geometry
    directory = default_data_dir(Path(args.results), geometry, args.seed)
    if getattr(args, "dry_run", False):
        return directory
    return ensure_standin(directory, geometry, args.seed)
