"""`harness reference distortions`: what each target lets through (benchmark/distortions.py)."""
from __future__ import annotations

import argparse
from typing import Optional

from reference_model.errors import InputError
from reference_model.specs import BENCHMARKS


def register(sub: argparse._SubParsersAction) -> None:
    """Add `distortions` to `harness reference`'s subcommands."""
    parser = sub.add_parser(
        "distortions",
        help="which known errors (energy scale, depth, depth fluctuation, angle) each target lets through",
        description="Judge pairs of independent stand-in samples against each other under each target, "
                    "the second sample distorted: every cell scaled (x1.05, x1.1, x1.2), every shower "
                    "1-3 layers deeper, every shower's depth pulled towards its energy bin's mean so that "
                    "the depth fluctuation is x0.5 or x0.75, and for 3dgan-angle every shower at a 2, 5, "
                    "10 or 15 degree larger incidence angle. Prints, per target, on how many pairs each "
                    "distortion passes and what fails; the table CALIBRATION.md records for every target "
                    "version.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--benchmark", choices=BENCHMARKS, default="3dgan")
    parser.add_argument("--target", metavar="VERSION", action="append", default=None,
                        help="a registered thresholds version; repeat for several columns "
                             "(unset: the benchmark's target)")
    parser.add_argument("--pairs", default="7:8,9:10",
                        help="stand-in seed pairs REFERENCE:CANDIDATE, comma-separated")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--show", metavar="PREFIX", default=None,
                        help="also print the values of the metrics whose names start with PREFIX (e.g. "
                             "separation.moment_z1), per distortion and pair, beside each target's limits")
    parser.set_defaults(func=run_distortions)


def parse_pairs(text: str) -> list[tuple[int, int]]:
    try:
        pairs = [tuple(int(s) for s in part.split(":")) for part in text.split(",")]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or p[0] == p[1] for p in pairs):
        raise InputError(f"--pairs {text!r}: write REFERENCE:CANDIDATE seed pairs, e.g. 7:8,9:10, "
                         "two different seeds each")
    return pairs


def run_distortions(args: argparse.Namespace) -> int:
    from benchmark import quality

    targets = [quality.load_thresholds(args.benchmark, version=v) for v in (args.target or [None])]
    return print_lets_through(targets, args.pairs, markdown=args.markdown, show=args.show)


def print_lets_through(targets: list, pairs_text: str, markdown: bool = False, show: Optional[str] = None) -> int:
    """Print, per target (a `quality.Thresholds`), on how many pairs each distortion passes; with
    `show`, the values of the metrics named so beside each target's limits."""
    from tabulate import tabulate

    from benchmark.distortions import failing_summary, lets_through

    pairs = parse_pairs(pairs_text)
    columns = [lets_through(t, pairs) for t in targets]
    rows = []
    for i, row in enumerate(columns[0]):
        cells = [row.distortion.label]
        for column in columns:
            judged = column[i]
            failed = sorted({name for names in judged.failures for name in names})
            cells.append(f"passes {judged.passes} of {len(pairs)}" + (f" (fails: {failing_summary(failed)})"
                                                                     if failed else ""))
        rows.append(cells)
    headers = ["second sample", *(f"{t.version} ({len(t.limits)} limits)" for t in targets)]
    table_format = "github" if markdown else "simple"
    print(tabulate(rows, headers=headers, tablefmt=table_format))
    print(f"pairs (reference:candidate seeds): {pairs_text}")
    if show:
        print()
        print(values_table(show, columns[0], targets, table_format))
    return 0


def values_table(prefix: str, rows: list, targets: list, table_format: str) -> str:
    """The metrics named PREFIX... per distortion (values on each pair, ' / '-separated), then
    each target's limit on them: how far inside or outside a limit a known error lands."""
    from tabulate import tabulate

    from benchmark.quality import display_order

    if any(t.document.get("evaluation") != targets[0].document.get("evaluation") for t in targets):
        raise InputError("--show: the targets compare different showers (their 'evaluation' blocks differ), so "
                         "one set of values cannot stand for all; show one target at a time")
    names = sorted((n for n in rows[0].values[0] if n.startswith(prefix)), key=display_order)
    if not names:
        raise InputError(f"--show {prefix!r}: no metric name starts with it (e.g. separation.moment_z1)")
    body = [[row.distortion.label, *(" / ".join(f"{v[n]:.3g}" for v in row.values) for n in names)]
            for row in rows]
    body += [[f"limit in {t.version}", *("-" if t.limits.get(n) is None else f"{t.limits[n]:.3g}" for n in names)]
             for t in targets]
    return tabulate(body, headers=["second sample", *names], tablefmt=table_format)
