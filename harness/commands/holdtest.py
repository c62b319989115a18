"""`harness reference holdtest`: does the target hold for a generator on fresh evaluation samples?
The test and its record are benchmark/hold_test.py's."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmark.hold_test import VALIDATION_SEEDS, record_path, required_passes
from reference_model.specs import BENCHMARKS


def register(sub: argparse._SubParsersAction) -> None:
    """Add `holdtest` to `harness reference`'s subcommands."""
    seeds = f"{VALIDATION_SEEDS[0]}-{VALIDATION_SEEDS[-1]}"
    parser = sub.add_parser(
        "holdtest", help="judge a generator against a target on many fresh stand-in sets (pass rate)",
        description="Judge a generator checkpoint (default: the shipped reference) against a target on "
                    "one fresh stand-in set per seed (the target's evaluation size, seeds no campaign "
                    "uses), and report on how many it passes: a target holds when the reference passes "
                    "it on at least 95% of them. Every metric of every seed is recorded beside the "
                    "checkpoint (rewritten after each seed; an interrupted run resumes). Exit 0 when "
                    "the target holds, 1 when it does not, 2 on bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--benchmark", choices=BENCHMARKS, default="3dgan",
                        help="whose shipped reference and target")
    parser.add_argument("--candidate", metavar="CHECKPOINT", default=None,
                        help="a generator *.weights.h5 with its sidecar; unset: the benchmark's shipped "
                             "reference in reference_model/checkpoints/")
    parser.add_argument("--target", metavar="VERSION", default=None,
                        help="a registered thresholds version; unset: the benchmark's target")
    parser.add_argument("--seeds", default=seeds,
                        help="data seeds, e.g. 5001-5020 or 99,101-107 (the v3 rule's validation seeds "
                             "by default; its calibration seeds are 4001-4020)")
    parser.add_argument("--data-dir", default="runs/holdtest-data",
                        help="where each seed's stand-in set is made (removed after it is judged)")
    parser.add_argument("--keep-data", action="store_true", help="keep each seed's stand-in set")
    parser.add_argument("--record", metavar="FILE", default=None,
                        help="the JSON record; unset: beside the checkpoint, "
                             "<name>.holdtest-<target name>.json")
    parser.set_defaults(func=run_holdtest)


def run_holdtest(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark import quality
    from benchmark.hold_test import parse_seeds, run_hold_test
    from reference_model.checkpoint import frozen_checkpoint
    from reference_model.errors import InputError

    seeds = parse_seeds(args.seeds)
    candidate = Path(args.candidate) if args.candidate else frozen_checkpoint(args.benchmark)
    if not candidate.is_file():
        raise InputError(f"--candidate {candidate}: no such checkpoint; ship one (`harness reference ship`) "
                         "or pass --candidate")
    thresholds = quality.load_thresholds(args.benchmark, version=args.target)
    record = Path(args.record) if args.record else record_path(candidate, thresholds.name)
    print(f"[holdtest] {candidate} against {thresholds.version} on {len(seeds)} fresh stand-in sets of "
          f"{thresholds.evaluation_events:,} events (needs {required_passes(len(seeds))} passes); "
          f"record {record}", flush=True)

    def progress(seed: int, verdict: dict) -> None:
        failed = ", ".join(f"{n} {verdict['metrics'][n]:.4g}" for n in verdict["failed"][:3])
        more = f" +{len(verdict['failed']) - 3} more" if len(verdict["failed"]) > 3 else ""
        print(f"[holdtest] seed {seed}: {'PASS' if verdict['passed'] else 'FAIL ' + failed + more}", flush=True)

    outcome = run_hold_test(candidate, thresholds, seeds, Path(args.data_dir), record, args.keep_data,
                            command=shlex.join(["harness", *sys.argv[1:]]), on_seed=progress)
    counts = outcome.failing_counts()
    if counts:
        rows = [(name, n, f"{outcome.worst(name):.4g}", thresholds.limits[name]) for name, n in counts.items()]
        print(tabulate(rows, headers=("failing metric", "seeds", "worst value", "limit")))
    print(f"[holdtest] {candidate.name} {outcome.summary()}", flush=True)
    if args.candidate is None and outcome.complete and args.record is None:
        from benchmark.ship import record_hold_test

        card = record_hold_test(candidate, outcome, thresholds, record)
        print(f"[holdtest] the pass rate is on the shipped reference's card and model card {card}; commit "
              "reference_model/checkpoints/", flush=True)
    return 0 if outcome.holds else 1
