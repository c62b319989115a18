"""`harness calibrate`: set a benchmark's quality thresholds from the measured noise floor."""
from __future__ import annotations

import argparse
import shlex
import sys

from harness.arguments import positive_int
from harness.thresholds_registry import next_version
from reference_model.specs import BENCHMARKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="set the quality thresholds from the stand-in noise floor",
        description="Compute every quality metric between two independent stand-in samples of the "
                    "evaluation size, REPETITIONS times; set each threshold to the Gamma-fitted "
                    "1 - 0.01/K quantile of its noise floor (K gated metrics, so a perfect generator "
                    "passes the whole gate with probability >= 99%), never below 1.25 x the largest "
                    "floor value; verify on fresh pairs; write the versioned thresholds file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--benchmark", choices=BENCHMARKS, required=True)
    parser.add_argument("--repetitions", type=positive_int, default=20,
                        help="independent sample pairs for the noise floor (at least 20)")
    parser.add_argument("--events", type=positive_int, default=None,
                        help="evaluation size: showers compared per sample, split evenly over the energy "
                             "bins (default: 1000 for 3dgan = 5 bins x 200, 400 for 3dgan-angle = 4 x 100)")
    parser.add_argument("--verify-repetitions", type=int, default=None,
                        help="fresh pairs run through the finished gate (default: --repetitions)")
    parser.add_argument("--seed", type=int, default=0, help="offset of the calibration seeds")
    parser.add_argument("--version", default=None,
                        help="declared version of the thresholds (default: the next <benchmark>-quality-vN "
                             "not yet in benchmark/thresholds/registry.json)")
    parser.add_argument("--out", default=None,
                        help="thresholds file to write (default: the benchmark's target file, the one "
                             "benchmark/thresholds/registry.json names)")
    parser.add_argument("--json", action="store_true", help="print the thresholds document as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from tabulate import tabulate

    from benchmark import calibration, quality
    from reference_model.errors import InputError

    bins = len(calibration.DESIGNS[args.benchmark].energy_centres_gev)
    events_per_bin = None
    if args.events is not None:
        if args.events % bins:
            raise InputError(f"--events {args.events}: must be a multiple of the {bins} energy bins "
                             f"of {args.benchmark}")
        events_per_bin = args.events // bins
    if args.verify_repetitions is not None and args.verify_repetitions < 0:
        raise InputError(f"--verify-repetitions {args.verify_repetitions}: must be 0 or more")
    command = "harness " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    document = calibration.calibrate(args.benchmark, repetitions=args.repetitions,
                                     events_per_bin=events_per_bin, seed=args.seed,
                                     version=args.version or next_version(args.benchmark),
                                     verify_repetitions=args.verify_repetitions, command=command)
    out = Path(args.out) if args.out else quality.thresholds_path(args.benchmark)
    calibration.write_thresholds(document, out)
    if args.json:
        print(json.dumps(document, indent=1))
        return 0
    cal, evaluation = document["calibration"], document["evaluation"]
    print(tabulate(calibration.summary_rows(document),
                   headers=("metric", "floor mean", "floor max", "threshold", "set by"), floatfmt=".4g"))
    verification = cal["verification"]
    print(f"\n{document['version']}: {cal['gated_metrics']} gated metrics, {cal['repetitions']} repetitions, "
          f"{evaluation['events_per_bin']} showers per energy bin x {len(evaluation['energy_bins_gev'])} bins "
          f"(read {evaluation['evaluation_events']} held-out showers to fill them)")
    print(f"verification on fresh pairs: {verification['passed']}/{verification['repetitions']} passed, "
          f"worst metric at {verification['worst_value_over_threshold']:.2f} x its threshold")
    print(f"wrote {out} in {cal['seconds']:.0f} s")
    return 0
