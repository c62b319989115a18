"""`harness compare ROOT [ROOT ...]`: systems side by side (e.g. CPU generations)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare systems: time to accuracy, throughput, epoch time, inference throughput",
        description="Compare every system of the results roots given (one root may hold several) side "
                    "by side: time to accuracy, training throughput and epoch time at each node count, "
                    "inference throughput at each setting; raw and normalised per node, socket, core "
                    "and core-GHz (from each systems/<system>.json; the clock is cpufreq's base, else "
                    "its max, else /proc/cpuinfo's 'cpu MHz', labelled; 'unknown' without one), with "
                    "speed-ups against the base system and 95% bootstrap confidence intervals over "
                    "runs. Each matched result is flagged not comparable when the two systems' "
                    "software, quality-thresholds version, data or model differ, and the differences "
                    "are listed. '*' marks results with too few runs.")
    parser.add_argument("roots", nargs="+", metavar="ROOT",
                        help="results roots; every system in each is compared")
    parser.add_argument("--base", metavar="SYSTEM", default=None,
                        help="the system the speed-ups are against (default: the first system of the "
                             "first root, by name)")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="also write PNG speed-up, scaling and throughput-against-streams plots to "
                             "DIR, and link them from the report")
    parser.add_argument("--markdown", action="store_true", help="markdown tables (for reports)")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="write the report to FILE instead of printing it (plot links relative to "
                             "FILE), e.g. `harness compare results --markdown --plot results/plots "
                             "--output results/comparison.md`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.comparison import Comparison, load_systems, render, with_base, write_plots
    from reference_model.atomic_files import write_text_atomic

    comparison = Comparison.of(with_base(load_systems([Path(r) for r in args.roots]), args.base))
    plots = write_plots(comparison, Path(args.plot)) if args.plot else []
    output = Path(args.output) if args.output else None
    text = render(comparison, args.markdown, plots, links_from=output.parent if output else Path("."))
    if output is None:
        print(text)
        return 0
    write_text_atomic(output, text)
    for path in (output, *plots):
        print(f"wrote {path}")
    return 0
