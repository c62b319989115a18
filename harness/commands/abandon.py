"""`harness abandon PATH`: an unfinished run whose process is gone, kept under its number."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "abandon", help="record an unfinished run whose process is gone as aborted, keeping its number",
        description="Record an unfinished run whose process is gone (killed, or its node lost) under its "
                    "final name, so that its number is no missing run (deleting it would leave one, "
                    "rules.md sections 7 and 9). A LoadGen run folder (ROOT/results/SYSTEM/BENCHMARK/"
                    "SCENARIO/performance/run_N.partial) becomes an aborted attempt, what LoadGen wrote "
                    "beside it, and harness check lists it as not counted. A training run's file "
                    "(ROOT/results/SYSTEM/strong|weak|epoch_time/BENCHMARK/result_N.txt.partial) is "
                    "finished as rank 0 left it where it wrote its summary, else as an aborted attempt with "
                    "its log closed by run_stop aborted: listed as not counted, and refused in a submission "
                    "tree (run submissions in a fresh root). A harness run stopped by SIGTERM records this "
                    "itself; this is for one killed harder. Refused while a process on this node has the "
                    "run's files open; on other nodes, check first.")
    parser.add_argument("path", type=Path, help="the run_N.partial folder, or a training run's result_N.txt.partial")
    parser.add_argument("--reason", default="its process ended before the run finished (harness abandon)",
                        help="why it ended, as the summary records it (default: %(default)s)")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "int8"), default=None,
                        help="a LoadGen run's precision, recorded in its settings (default: not recorded)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import results

    recorded_by = {"recorded_by": results.harness_command()}
    if args.path.is_dir():
        unfinished = results.unfinished_inference_run(args.path)
        _refuse_while_open(args.path, [unfinished.directory])
        settings = {"settings": {"precision": args.precision} if args.precision else {}}
        path = results.abort_inference_run(unfinished, args.reason, command=None, record={**recorded_by, **settings})
    else:
        unfinished = results.unfinished_training_run(args.path)
        _refuse_while_open(args.path, [unfinished.log, unfinished.summary])
        path = results.abort_training_run(unfinished, args.reason, recorded_by)
    status = (results.read_summary(path) or {}).get("status")
    print(f"harness abandon: {args.path.name} recorded ({status}): {path}")
    return 0


def _refuse_while_open(path: Path, files: list[Path]) -> None:
    from reference_model.errors import InputError

    if writers := _processes_with_files_in(files):
        raise InputError(f"{path}: still open in process(es) {', '.join(map(str, writers))} on this node; "
                         "let the run finish or stop it (SIGTERM records how it ended)")


def _processes_with_files_in(paths: list[Path]) -> list[int]:
    """PIDs of this node's processes holding one of `paths` (or a file in a folder of them) open."""
    import psutil

    held = [str(p.resolve()) for p in paths]
    pids = []
    for process in psutil.process_iter():
        try:
            if any(f.path == h or f.path.startswith(h + "/") for f in process.open_files() for h in held):
                pids.append(process.pid)
        except psutil.Error:
            continue
    return pids
