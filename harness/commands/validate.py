"""`harness validate`: judge a generator checkpoint, or any simulator's showers, against reference
showers with the benchmark's fixed quality thresholds; optionally write plots and a report."""
from __future__ import annotations

import argparse
from pathlib import Path

from reference_model.specs import BENCHMARKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="physics validation against the fixed quality thresholds",
        description="Compare candidate showers with reference showers: every quality metric (the "
                    "offline objective per term and in total, CaloChallenge separation powers per "
                    "energy bin) against its calibrated threshold, PASS/FAIL. Exit status 0 only "
                    "when every metric passes, 1 when any fails, 2 on bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--reference", required=True, metavar="DATA",
                        help="reference showers: an HDF5 directory, file or glob in the real CLIC layout")
    parser.add_argument("--candidate", required=True, metavar="CHECKPOINT|DATA",
                        help="a generator checkpoint (*.weights.h5 with its .json sidecar, or a directory "
                             "holding one), whose showers are generated with the reference showers' "
                             "(E, theta); or showers from any simulator as HDF5 data in the real layout")
    parser.add_argument("--benchmark", choices=BENCHMARKS, default=None,
                        help="default: from the checkpoint, or from the reference data's geometry")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write comparison plots (PNG), quality.json and report.md here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--target", metavar="VERSION", default=None,
                        help="judge against this registered thresholds version (a release candidate, "
                             "say, whose verdicts are not submittable); default: the benchmark's target "
                             "in benchmark/thresholds/registry.json")
    target.add_argument("--smoke", action="store_true",
                        help="use the smoke target (tests only; the verdict is not submittable)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed for a checkpoint candidate")
    parser.add_argument("--batch-size", type=int, default=128, help="generation batch for a checkpoint")
    parser.set_defaults(func=run)


def is_checkpoint(path: Path) -> bool:
    """A *.weights.h5 file, or a directory holding one (data directories hold plain .h5 files)."""
    from reference_model.checkpoint import WEIGHTS_SUFFIX

    if path.name.endswith(WEIGHTS_SUFFIX):
        return True
    return path.is_dir() and any(path.glob(f"*{WEIGHTS_SUFFIX}"))


def _benchmark_for(args: argparse.Namespace, candidate_is_checkpoint: bool) -> str:
    from reference_model import data
    from reference_model.checkpoint import read_card
    from reference_model.errors import InputError
    from reference_model.specs import get_spec, spec_for_geometry

    first_path, _, _ = data.source_range(data.list_files(args.reference)[0])
    geometry = data.detect_format(first_path)
    if candidate_is_checkpoint:
        benchmark = str(read_card(Path(args.candidate)).get("benchmark", ""))
        if benchmark not in BENCHMARKS:
            raise InputError(f"--candidate {args.candidate}: the sidecar names no known benchmark "
                             f"({benchmark!r}); re-export it with save_generator")
    else:
        benchmark = args.benchmark or spec_for_geometry(geometry).benchmark
    if args.benchmark and args.benchmark != benchmark:
        raise InputError(f"--benchmark {args.benchmark}: the checkpoint {args.candidate} is a {benchmark} "
                         "generator; drop --benchmark or pass a matching checkpoint")
    if get_spec(benchmark).geometry != geometry:
        raise InputError(f"--reference {args.reference}: {geometry}-geometry data, but {benchmark} needs "
                         f"{get_spec(benchmark).geometry}-geometry showers")
    return benchmark


def hold_test_line(checkpoint: Path, thresholds) -> str:
    """How often this generator passes this target on fresh evaluation samples, as recorded: one
    verdict on one held-out set says little when the limits sit near the sample's noise."""
    from benchmark.hold_test import recorded_for

    recorded = recorded_for(checkpoint, thresholds)
    if recorded is None:
        return (f"no hold test on record for this generator and {thresholds.version}: its pass rate on fresh "
                f"samples is unknown (`harness reference holdtest --candidate {checkpoint} "
                f"--target {thresholds.name}`)")
    return f"hold test on record: this generator {recorded.summary()}"


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from benchmark import quality
    from reference_model.errors import InputError

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be at least 1")
    candidate_path = Path(args.candidate)
    if not candidate_path.exists() and not any(c in args.candidate for c in "*?["):
        raise InputError(f"--candidate {candidate_path}: no such file or directory")
    checkpoint = is_checkpoint(candidate_path)
    benchmark = _benchmark_for(args, checkpoint)
    thresholds = quality.load_thresholds(benchmark, smoke=args.smoke, version=args.target)
    reference = quality.load_evaluation_showers(args.reference, thresholds, "--reference")
    if checkpoint:
        from functools import partial

        from reference_model.checkpoint import load_generator

        spec, generator = load_generator(candidate_path)
        print(f"[validate] generating {len(reference)} {benchmark} showers with the reference's "
              f"(E, theta) from {candidate_path}", file=sys.stderr, flush=True)
        report = quality.evaluate_generator(partial(generator, training=False), spec, reference,
                                            thresholds, seed=args.seed, batch_size=args.batch_size)
        print(f"[validate] {hold_test_line(candidate_path, thresholds)}", file=sys.stderr, flush=True)
    else:
        candidate = quality.load_evaluation_showers(args.candidate, thresholds, "--candidate")
        report = quality.evaluate(reference, candidate, thresholds)

    registration = _registration_problem(report)
    if registration:
        report.submittable = False
        print(f"[validate] not submittable: {registration}", file=sys.stderr, flush=True)
    if args.report:
        from harness.report import write_report

        context = {"reference": args.reference,
                   "candidate": f"{args.candidate} ({'generator checkpoint' if checkpoint else 'showers'})"}
        markdown = write_report(report, Path(args.report), context)
        print(f"[validate] report: {markdown}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(format_table(report))
    return 0 if report.passed else 1


def _registration_problem(report) -> str | None:
    """Why the thresholds file behind a report is not the registered one (None when it is): a
    verdict against a file changed without a new version is never submittable, as `harness
    check` refuses a result logged with it."""
    from harness.thresholds_registry import judge

    if not report.submittable:
        return None
    verdict = judge(report.thresholds_version)
    return None if verdict.known else verdict.problem


def format_table(report) -> str:
    """Every metric against its threshold, then the verdict line."""
    from tabulate import tabulate

    rows = [(r.name, f"{r.value:.4g}", "-" if r.threshold is None else f"{r.threshold:.4g}",
             "info" if r.passed is None else ("PASS" if r.passed else "FAIL")) for r in report.results]
    table = tabulate(rows, headers=("metric", "value", "threshold", "result"),
                     colalign=("left", "right", "right", "left"))
    label = "SMOKE TARGET, not submittable" if report.smoke else (
        "submittable" if report.submittable else "not submittable")
    verdict = "PASS" if report.passed else "FAIL"
    shifts = "".join(f"\n  {name}: candidate {shift.describe()}" for name, shift in report.failure_shifts())
    if shifts:
        shifts = "\n\nWhat differs where a separation power fails (the compared showers of that bin):" + shifts
    return (f"{table}{shifts}\n\n{verdict}: {report.failed_summary()} "
            f"(thresholds {report.thresholds_version}, {label}; {report.events_per_bin} showers per energy bin)")
