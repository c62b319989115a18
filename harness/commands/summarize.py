"""`harness summarize ROOT`: the scored results, one row per system, benchmark and configuration."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summarize", help="scored results of a results tree (table, markdown or JSON)",
        description="Score a results tree as rules.md says: runs of the same system, benchmark and "
                    "configuration form a result; time to accuracy is the mean of the runs after "
                    "dropping the fastest and the slowest (a run that missed the target counts as "
                    "the slowest), throughput likewise, each time-to-accuracy result with its verdict "
                    "against the reference convergence points (benchmark/rcp/; a set faster than the "
                    "reference that passes is normalised, as MLPerf does). '*' marks results that are not "
                    "valid yet.")
    parser.add_argument("root", help="results root (holds systems/ and results/)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="print JSON with every run's value (the baseline `harness regress` reads)")
    output.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tabulate import tabulate

    from benchmark.rcp import Verdict
    from harness import results
    from harness.comparison import config_text
    from harness.scoring import score_tree

    results.require_root(args.root)
    scored = score_tree(Path(args.root))
    if args.json:
        print(json.dumps([s.to_dict() for s in scored], indent=2))
        return 0
    rows = [(s.system, s.benchmark, s.mode, config_text(s.config), s.metric,
             "-" if s.score.value is None else f"{s.score.value:.4g}", s.score.runs,
             "yes" if s.score.valid else f"no: {s.score.reason}",
             "yes" if s.submittable else f"no ({s.not_submittable})",
             "-" if s.rcp is None else Verdict(**s.rcp).short())
            for s in scored]
    print(tabulate(rows, headers=("system", "benchmark", "mode", "configuration", "metric", "score", "runs",
                                  "valid", "submittable", "RCP"), tablefmt="github" if args.markdown else "simple"))
    if not rows:
        print(f"no results under {args.root}")
    for s in scored:
        if s.rcp is not None:
            print(f"RCP verdict, {s.system} {s.benchmark} {s.mode} ({config_text(s.config)}): {s.rcp['message']}")
    return 0
