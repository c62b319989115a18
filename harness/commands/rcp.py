"""`harness rcp ROOT`: reference convergence runs in a results tree, and the RCPs they would add."""
from __future__ import annotations

import argparse
from pathlib import Path

from reference_model.specs import BENCHMARKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rcp", help="the reference convergence runs in a results tree, and the RCPs they add (--write)",
        description="List the closed, compliant time-to-accuracy results of a benchmark under ROOT that "
                    "reached the target (each a run of the reference implementation), grouped by global "
                    "batch, beside the reference convergence points (RCPs) in force, and each other "
                    "time-to-accuracy result with why it is not a reference run. A submission at a global "
                    "batch no RCP covers must bring such runs (MLPerf: at least 3 here, 10 asked), each "
                    "from its own seed with the same recipe; --write adds an RCP for every batch that has "
                    "none (an RCP is never replaced). Commit the RCP file with the runs' results.")
    parser.add_argument("root", type=Path, help="results root (holds systems/ and results/)")
    parser.add_argument("--benchmark", choices=BENCHMARKS, default="3dgan")
    parser.add_argument("--write", action="store_true",
                        help="add the RCPs of the batches that have none to the RCP file")
    parser.add_argument("--rcp-dir", type=Path, default=None, metavar="DIR",
                        help="the RCP files' folder (default: the suite's benchmark/rcp/)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark import rcp
    from benchmark.vocabulary import TTA
    from harness import rcp_runs, results
    from harness.scoring import REQUIRED_RUNS
    from reference_model.errors import InputError

    root = results.require_root(args.root)
    found = rcp_runs.candidates(root, args.benchmark)
    runs = [c.run for c in found if c.run is not None]
    covered = {record["BS"] for record in rcp.load_rcps(args.benchmark, args.rcp_dir).values()}
    batches: dict[int, list] = {}
    for run in runs:
        batches.setdefault(run.global_batch, []).append(run)
    rows = [[batch, len(members), ",".join(str(m.seed) for m in members),
             ", ".join(f"{m.samples_to_converge:,}" for m in members),
             "has one (never replaced)" if batch in covered else "none"]
            for batch, members in sorted(batches.items())]
    print(f"Reference runs of {args.benchmark} under {root} (closed, compliant, converged time-to-accuracy results):")
    print(tabulate(rows, headers=["global batch", "runs", "seeds", "samples to converge", "RCP"])
          if rows else "  none")
    for candidate in found:
        if candidate.run is None:
            print(f"not a reference run: {candidate.summary_path}: {candidate.why_not}")
    new = [run for run in runs if run.global_batch not in covered]
    if not args.write:
        if new:
            print(f"--write would add the RCP of global batch {_batches(new)} to "
                  f"{rcp.rcp_path(args.benchmark, args.rcp_dir)}")
        return 0
    if not new:
        raise InputError(f"no reference runs under {root} at a global batch without an RCP; nothing to write")
    path = rcp.add_reference_runs(args.benchmark, new, REQUIRED_RUNS[TTA], args.rcp_dir)
    print(f"Added the RCP of global batch {_batches(new)} ({len(new)} runs) to {path}; commit it with the "
          "runs' results")
    return 0


def _batches(runs: list) -> str:
    return ", ".join(str(batch) for batch in sorted({run.global_batch for run in runs}))
