"""`harness reference queue`: train the background slot's next jobs, or show the queue (`--status`).
The jobs and their order are harness/campaign_queue.py's."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.arguments import add_background_options


def register(sub: argparse._SubParsersAction) -> None:
    """Add `queue` to `harness reference`'s subcommands."""
    parser = sub.add_parser(
        "queue", help="train the background slot's next jobs for --hours (recipe study, v3, angle, closed "
                      "rule, first TTA results)",
        description="The one background slot's jobs in their order: the recipe study; 3dgan v3's target steps, "
                    "second seed, promotion and ship; the 3dgan-angle campaign, its target steps, second seed, "
                    "promotion and ship; the closed-rule study; the first five time-to-accuracy results at one "
                    "rank (each started only when --hours cover it, never resumed). Each job's state is read "
                    "from the committed curves, targets and checkpoints; a job starts once the jobs it needs are done. "
                    "Trains the first ready job for --hours at low priority and goes on to the next one when it "
                    "ends; a step a person runs (a promotion and a ship) or one that is blocked holds back only "
                    "the jobs that need it, and is named with the command that runs it. Stops with a "
                    "checkpoint on SIGTERM; commit benchmark/ after (and results/, where the first "
                    "time-to-accuracy results land).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_background_options(parser)
    parser.add_argument("--status", action="store_true", help="print every job's state and the next one; train nothing")
    parser.add_argument("--holdtest-dir", default="runs/holdtest-data",
                        help="where each hold-test seed's stand-in set is made (removed after it is judged)")
    parser.set_defaults(func=run_queue_command)


def run_queue_command(args: argparse.Namespace) -> int:
    from harness import campaign_queue as queue

    jobs = queue.background_queue()
    if args.status:
        _print_status(jobs)
        return 0
    if args.nice:
        os.nice(args.nice)
    stopped = queue.run_queue(jobs, args.hours, queue.Settings(Path(args.data_dir), Path(args.holdtest_dir),
                                                               args.threads))
    _print_status(jobs)
    return 0 if stopped.kind in (queue.READY, queue.DONE) else 1


def _print_status(jobs) -> None:
    from tabulate import tabulate

    from harness import campaign_queue as queue

    listed = queue.queue_states(jobs)
    print(tabulate([[job.name, state.kind, state.detail] for job, state in listed], headers=["job", "state", ""]))
    trainable = queue.next_trainable(listed)
    for job, state in queue.held_up(listed):
        print(f"Waiting for a person ({job.name}): {state.command}")
    if trainable is not None:
        print(f"Next in the background: {trainable[1].command}")
    elif all(state.kind == queue.DONE for _, state in listed):
        print("Every queued job is done.")
