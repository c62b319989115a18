"""`harness check ROOT`: the rules of rules.md that a program can check, on a results tree."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check a results tree against the rules (exit 1 with a list of problems)",
        description="Check a results tree (the folder holding systems/ and results/) against rules.md: "
                    "every MLPerf log through the compliance checker with our rules "
                    "(benchmark/compliance/), the system descriptions, every summary against its log "
                    "(scores are taken from the logs), the quality thresholds against "
                    "benchmark/thresholds/registry.json, LoadGen validity and the quality record of "
                    "inference results (a run LoadGen found INVALID is listed as an attempt, never "
                    "scored), the number of runs per result, throughput sets, interrupted finishes, "
                    "that no smoke or unfinished result is in it, and each closed time-to-accuracy "
                    "result against the reference convergence points (benchmark/rcp/), whose verdicts "
                    "it prints, and what each system's results set still lacks (reported, not a problem). "
                    "Exits 1 and lists every problem.")
    parser.add_argument("root", help="results root (holds systems/ and results/)")
    parser.add_argument("--per-run", action="store_true",
                        help="check each run on its own (logs, summaries, compliance) but not what a "
                             "submission needs (run counts, no smoke or unfinished runs): for work trees")
    parser.add_argument("--lacking", metavar="SYSTEM", default=None,
                        help="print only the parts of SYSTEM's results set (what every CPU measures) that the tree "
                             "lacks, one scripts/measure-results-set.sh PART per line (followed by the "
                             "precisions it lacks where only some are), and exit 0")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import results, results_set
    from harness.checks import check_tree, not_counted_runs, rcp_verdicts

    results.require_root(args.root)
    if args.lacking:
        for part, precisions in results_set.parts_to_measure(results_set.gaps(args.root, args.lacking)):
            print(f"{part} {','.join(precisions)}".rstrip())
        return 0
    problems, checked = check_tree(args.root, per_run=args.per_run)
    for problem in problems:
        print(problem)
    for not_counted in not_counted_runs(args.root):
        print(not_counted)
    if not args.per_run:  # each verdict once: a failing one is among the problems
        for verdict in (v for v in rcp_verdicts(args.root) if v not in problems):
            print(f"RCP verdict: {verdict}")
        for line in results_set.report(args.root):
            print(line)
    scope = "per run" if args.per_run else "as a submission"
    if problems:
        print(f"harness check: {len(problems)} problem(s) in {checked} result(s) under {args.root} ({scope})")
        return 1
    print(f"harness check: {checked} result(s) under {args.root} pass ({scope})")
    return 0
