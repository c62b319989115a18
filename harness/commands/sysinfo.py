"""`harness sysinfo`: the system description (MLPerf system-JSON fields and CPU details)."""
from __future__ import annotations

import argparse
import json

from harness.sysinfo import add_identity_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sysinfo", help="describe this system (MLPerf system-description fields, CPU, software)",
        description="Describe this system: the MLPerf system-description fields (submitter, division, "
                    "system name, nodes, processor, cores, memory, accelerators, framework, OS, "
                    "interconnect) and what a CPU comparison needs (microarchitecture, ISA features, "
                    "frequencies, caches, NUMA layout, Python/TensorFlow/oneDNN/Horovod/MPI versions). "
                    "Read from the operating system and psutil; what cannot be read is 'unknown'.")
    parser.add_argument("--json", action="store_true",
                        help="print the full description as JSON (the systems/<system>.json content)")
    add_identity_arguments(parser)
    parser.add_argument("--nodes", type=int, default=1,
                        help="number_of_nodes to record (the node count the system runs with)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.sysinfo import describe_system, identity_from_environment, summary_rows
    from reference_model.errors import InputError

    if args.nodes < 1:
        raise InputError(f"--nodes {args.nodes}: must be a positive integer")
    identity = identity_from_environment(args.submitter, args.division, args.status, args.system_name)
    description = describe_system(identity, nodes=args.nodes)
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(tabulate(summary_rows(description), headers=("field", "value")))
    return 0
