"""`harness abandon RUN_DIR`: an unfinished LoadGen run whose process is gone, kept as an attempt."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "abandon", help="record an unfinished LoadGen run whose process is gone as an aborted attempt",
        description="Record an unfinished LoadGen run folder (ROOT/results/SYSTEM/BENCHMARK/SCENARIO/"
                    "performance/run_N.partial) whose process is gone (killed, or its node lost) as an "
                    "aborted attempt under its final name run_N: its number stays used, what LoadGen "
                    "wrote stays beside it, and harness check lists it as not counted (rules.md section 9). "
                    "Deleting it instead would leave a missing run. A harness run stopped by SIGTERM "
                    "records this itself; this is for one killed harder. Refused while a process on "
                    "this node has a file open in the folder; on other nodes, check first.")
    parser.add_argument("run_dir", type=Path, help="the run_N.partial folder")
    parser.add_argument("--reason", default="its process ended before the run finished (harness abandon)",
                        help="why it ended, as the summary records it (default: %(default)s)")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "int8"), default=None,
                        help="the precision it ran, recorded in its settings (default: not recorded)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import results
    from reference_model.errors import InputError

    unfinished = results.unfinished_inference_run(args.run_dir)
    if writers := _processes_with_files_in(unfinished.directory):
        raise InputError(f"{unfinished.directory}: still open in process(es) {', '.join(map(str, writers))} "
                         "on this node; let the run finish or stop it (SIGTERM records it as aborted)")
    path = results.abort_inference_run(unfinished, args.reason, command=None,
                                       record={"recorded_by": results.harness_command(),
                                               "settings": {"precision": args.precision} if args.precision else {}})
    print(f"harness abandon: {unfinished.directory.name} recorded as an aborted attempt: {path}")
    return 0


def _processes_with_files_in(directory: Path) -> list[int]:
    """PIDs of this node's processes holding a file under `directory` open."""
    import psutil

    inside = str(directory.resolve()) + "/"
    pids = []
    for process in psutil.process_iter():
        try:
            if any(f.path.startswith(inside) for f in process.open_files()):
                pids.append(process.pid)
        except psutil.Error:
            continue
    return pids
