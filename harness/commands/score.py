"""`harness score`: a score in the HEP convention (HEPscore23), from 3DGAN workloads filling the node."""
from __future__ import annotations

import argparse

from harness import hepscore
from harness.arguments import positive_float, positive_int
from harness.sysinfo import add_identity_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="a HEPscore23-style score of this server: 3DGAN workloads relative to a reference system",
        description="Score this server the way WLCG sites score CPUs with HEPscore23: each 3DGAN workload "
                    "(inference in float32, bfloat16 and int8, the mixed_bfloat16 training step) runs as "
                    "independent pinned copies that fill the logical CPUs this process may use; a run's "
                    "throughput is the sum over copies, a workload's the median over repetitions, its "
                    "score that over the reference system's, and the server's score the geometric mean "
                    "of its workloads' scores (the reference system scores 1.0). A bfloat16 or int8 "
                    "workload whose showers fail the precision gate against float32 is reported failed "
                    "and never timed. Writes the HEP Benchmark Suite's JSON layout (rules.md section 12).")
    parser.add_argument("--workloads", default=None, metavar="LIST",
                        help=f"comma-separated workloads to run, from {', '.join(hepscore.WORKLOADS)}; "
                             "unset: all (a score over fewer is reported with the others excluded)")
    parser.add_argument("--copies", type=positive_int, default=None, metavar="N",
                        help="independent copies (processes) per workload; unset: the logical CPUs this "
                             "process may use divided by --threads-per-copy")
    parser.add_argument("--threads-per-copy", type=positive_int, default=None, metavar="N",
                        help="threads (and pinned logical CPUs) of each copy; unset: "
                             f"{hepscore.DEFAULT_THREADS_PER_COPY}, or the logical CPUs divided by --copies")
    parser.add_argument("--repetitions", type=positive_int, default=hepscore.DEFAULT_REPETITIONS, metavar="N",
                        help="runs per workload; the median counts (default %(default)s)")
    parser.add_argument("--duration", type=positive_float, default=hepscore.DEFAULT_DURATION_S, metavar="S",
                        help="timed seconds per run, after each copy's warm-up (default %(default)g)")
    parser.add_argument("--reference", default=hepscore.DEFAULT_REFERENCE, metavar="SYSTEM",
                        help="the reference system: its committed report results/score/SYSTEM.json, or a "
                             "report file (*.json); default %(default)s")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="where the JSON report goes (written atomically); unset: "
                             "RESULTS/score/<system>.json. A report written to the reference's own file is "
                             "the reference: it scores 1.0")
    parser.add_argument("--results", default="runs", metavar="ROOT",
                        help="results root: the default --out, and where the int8 model is quantised once "
                             "(checkpoints/, shared with harness run --mode inference); default %(default)s")
    parser.add_argument("--quick", action="store_true",
                        help=f"a test run: {hepscore.QUICK['duration_s']:g} s per run, 1 repetition, 1 warm-up "
                             "iteration, the smoke precision gate; the report says it is not comparable "
                             "with a full one")
    add_identity_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.precision import configure_threads
    from harness import results
    from harness.sysinfo import describe_system, identity_from_environment
    from reference_model.atomic_files import write_json_atomic

    workloads = hepscore.parse_workloads(args.workloads)
    cpus = hepscore.logical_cpus()
    settings = hepscore.Settings.resolve(args.copies, args.threads_per_copy, args.repetitions, args.duration,
                                         args.quick, len(cpus))
    configure_threads(len(cpus), 1)  # this process gates the precisions; before any TensorFlow op
    identity = identity_from_environment(args.submitter, args.division, args.status, args.system_name)
    host = describe_system(identity)
    system = host["system_name"]
    out = Path(args.out) if args.out else Path(args.results) / "score" / f"{system}.json"
    print(f"[score] {system}: {len(workloads)} workloads x {settings.repetitions} runs of "
          f"{settings.duration_s:g} s, {settings.copies} copies x {settings.threads_per_copy} threads on "
          f"{settings.cpus_used} of {settings.logical_cpus} logical CPUs; reference {args.reference}", flush=True)
    workdir = results.checkpoint_dir(Path(args.results), system, hepscore.BENCHMARK, hepscore.INFERENCE)
    report = hepscore.run_score(workloads, settings, cpus, host, args.reference, out, workdir,
                                results.harness_command())
    write_json_atomic(out, report)
    _print_summary(report)
    print(f"[score] report written to {out}")
    return 0 if report["status"] == hepscore.SUCCESS else 1


def _print_summary(report: dict) -> None:
    from tabulate import tabulate

    rows = []
    for name, block in report["benchmarks"].items():
        note = report["excluded"].get(name, "")
        rows.append((name, block["status"], _number(block["throughput"]), _number(block["ref_throughput"]),
                     _number(block["score"], ".3f"), block["unit"], note))
    print("\n" + tabulate(rows, headers=("workload", "status", "throughput", "reference", "score", "unit",
                                         "excluded from the score"), disable_numparse=True))
    reference = report["reference"]
    against = f"{reference['system']} (this report is the reference)" if reference["self"] else reference["system"]
    scored = len(report["wl-scores"])
    print(f"\n[score] score {_number(report['score'], '.3f')}: geometric mean of {scored} workload scores, "
          f"relative to {against}; status {report['status']}")
    for difference in reference["differences"]:
        print(f"[score] NOT COMPARABLE with the reference: {difference}")


def _number(value, spec: str = ",.2f") -> str:
    return "n/a" if value is None else format(value, spec)
