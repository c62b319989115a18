"""`harness`: the suite's single command line.

Each command lives in its own module under `harness.commands` and registers itself with
`register(subparsers)`; this file only assembles them, so `harness --help` lists exactly the
commands that exist. Heavy imports (TensorFlow, Horovod) happen inside the handlers, which keeps
`--help` instant.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from reference_model.errors import InputError

COMMAND_MODULES = ("run", "data", "reference", "validate", "model", "sysinfo", "check", "abandon", "summarize",
                   "compare", "regress", "calibrate", "score", "rcp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="3DGAN HPC benchmark suite: time-to-accuracy, epoch-time scaling and inference "
                    "throughput of CERN's 3DGAN, with fixed physics-quality thresholds and MLPerf logs.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"harness.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if args.command is None:  # bare `harness` is the main job, like `harness run`
            args = parser.parse_args(["run", *(argv or [])])
        else:
            parser.parse_args([args.command, "--help"])
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"harness {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
