"""`harness compare ROOT_A ROOT_B ...`: systems side by side (e.g. CPU generations)."""
from __future__ import annotations

import argparse

from benchmark import vocabulary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare systems: time to accuracy, throughput, epoch time, inference throughput",
        description="Compare the results of several results roots side by side: time to accuracy, "
                    "training throughput and epoch time at each node count, inference throughput at "
                    "each setting; raw and normalised per node, socket and core (from each "
                    "systems/<system>.json), with speed-ups against the first system and 95%% "
                    "bootstrap confidence intervals over runs. '*' marks results with too few runs.")
    parser.add_argument("roots", nargs="+", metavar="ROOT", help="results roots; the first system is the base")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="also write PNG scaling curves and throughput-against-streams plots to DIR")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables (for reports)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tabulate import tabulate

    from harness import results
    from harness.comparison import comparison_table, epoch_time_table, load_systems, write_plots

    systems = load_systems([Path(r) for r in args.roots])
    fmt = "github" if args.markdown else "simple"
    sections = [("Time to accuracy", comparison_table(systems, vocabulary.TTA)),
                ("Throughput: time to train M instances (MLPerf HPC weak/)",
                 comparison_table(systems, vocabulary.THROUGHPUT)),
                ("Training speed (epoch-time runs)", comparison_table(systems, vocabulary.EPOCH_TIME)),
                ("Epoch time", epoch_time_table(systems)),
                ("Inference throughput", comparison_table(systems, vocabulary.INFERENCE))]
    for title, (headers, rows) in sections:
        print(f"## {title}\n" if args.markdown else f"{title}\n{'=' * len(title)}")
        print(tabulate(rows, headers=headers, tablefmt=fmt) if rows else "(no results)")
        print()
    if args.plot:
        for path in write_plots(systems, Path(args.plot)):
            print(f"wrote {path}")
    return 0
