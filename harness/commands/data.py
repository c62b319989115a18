"""`harness data`: make stand-in calorimeter data (`synth`) and describe a data set (`info`)."""
from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="make stand-in showers or describe a data set",
                                   description="Make stand-in calorimeter showers in the real CLIC "
                                               "EleEscan layouts, or describe a data set.")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    synth = sub.add_parser(
        "synth", help="write physics-based stand-in showers in the real file layouts",
        description="Simulate electron showers in a CLIC-like W/Si ECAL (GFlash longitudinal and "
                    "radial profiles, sampling and cell fluctuations, the fitted sampling "
                    "fraction) and write them as EleEscan HDF5 files in exactly the real layouts: "
                    "fixed = ECAL (N,25,25,25) GeV + target[:,1] energy; angle = ECAL (N,51,51,25) "
                    "GeV x 50 + energy, theta, eta, sum. The same seed gives identical files.")
    synth.add_argument("--out", required=True, metavar="DIR",
                       help="directory for the files (created; must hold no .h5 files)")
    synth.add_argument("--events", required=True, type=int, metavar="N", help="number of events")
    synth.add_argument("--geometry", choices=("fixed", "angle"), default="fixed",
                       help="fixed: 25x25x25 at normal incidence (benchmark 3dgan); angle: "
                            "51x51x25 with theta in 60-120 deg (3dgan-angle). Default: fixed")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--energy-range", type=float, nargs=2, metavar=("LO", "HI"),
                       help="primary energy range in GeV, uniform (default: 10 500 fixed, 2 500 angle)")
    synth.add_argument("--events-per-file", type=int, default=10_000, metavar="N",
                       help="events per file (default 10000, as the real files)")
    synth.add_argument("--quiet", action="store_true", help="no progress output")
    synth.set_defaults(func=run_synth)

    info = sub.add_parser("info", help="format, files, events and energy range of a data set",
                          description="Describe a data set: its format (detected from keys and "
                                      "shapes), files, events, energy and angle ranges, and the "
                                      "default 90/10 train/test split. Reads no images unless "
                                      "--check is given.")
    info.add_argument("path", help="a data directory, an .h5 file or a quoted glob")
    info.add_argument("--check", action="store_true",
                      help="also read every image and check for NaN or negative cells (slow)")
    info.set_defaults(func=run_info)


def run_synth(args: argparse.Namespace) -> int:
    from reference_model.simulator import write_dataset

    energy_range = tuple(args.energy_range) if args.energy_range else None
    start = time.monotonic()
    paths = write_dataset(args.out, args.events, geometry=args.geometry, seed=args.seed,
                          energy_range=energy_range, events_per_file=args.events_per_file,
                          progress=not args.quiet)
    seconds = time.monotonic() - start
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"wrote {args.events} {args.geometry}-geometry events in {len(paths)} file(s) to "
          f"{args.out} ({size_mb:,.1f} MB) in {seconds:,.1f} s: {args.events / seconds:,.1f} events/s")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import numpy as np
    from tabulate import tabulate

    from reference_model import data
    from reference_model.showers import ANGLE

    files = data.list_files(args.path)
    rows, energies, angles, geometries = [], [], [], set()
    for source in files:
        path, start, stop = data.source_range(source)
        with data.EventFile(path) as f:
            stop = f.n_events if stop is None else min(stop, f.n_events)
            energy = f.energies(start, stop)
            theta = f.angles(start, stop)
            if args.check:
                for i in range(start, stop, data.READ_BLOCK_EVENTS):
                    f.images(i, min(i + data.READ_BLOCK_EVENTS, stop))
            geometries.add(f.geometry)
            energies.append(energy)
            if theta is not None:
                angles.append(theta)
            rows.append((str(source), f.geometry, len(energy), f"{energy.min():.1f}-{energy.max():.1f}"))
    print(tabulate(rows, headers=("file", "format", "events", "energy GeV")))
    energy = np.concatenate(energies)
    print(f"\nformat: {', '.join(sorted(geometries))}; files: {len(files)}; events: {len(energy)}; "
          f"energy {energy.min():.2f}-{energy.max():.2f} GeV")
    if ANGLE in geometries:
        theta = np.degrees(np.concatenate(angles))
        print(f"theta {theta.min():.1f}-{theta.max():.1f} deg")
    if len(geometries) > 1:
        print("error: the files mix geometries; keep one geometry per data set")
        return 1
    train, test = data.split_files(files)
    print(f"default split (90/10 by sorted file order): {len(train)} training, {len(test)} test "
          f"{'file(s)' if len(files) > 1 else 'event range(s) of the one file'}")
    if args.check:
        print("check: every image read; no NaN, infinite or negative cells")
    return 0
