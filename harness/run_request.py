"""The typed `harness run` request: what the user asked for, built once at the command line.

`harness.commands.run` owns the flags (their names, defaults and help, in `register`) and turns
argparse's namespace into a `RunRequest` (`RunRequest.from_namespace`); everything below the
command line (the main job, launching, default data, the results tree, the worker) reads this
frozen object and never the namespace. Checks that span flags or belong to one mode are made
here, once, when the request is built, as one-line errors that name the flag and the fix.

A request goes back to flags in one place, `to_argv`: a rank re-enters `harness run --worker`
and a batch job runs `harness run --launcher srun`, each rebuilding the request from the flags
(`RunRequest.from_argv(to_argv(request)) == request`).
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Optional, Sequence

from benchmark.vocabulary import EPOCH_TIME, INFERENCE, MODES, SCALING, THROUGHPUT, TTA
from reference_model.errors import InputError

TRAINING_MODES = (TTA, THROUGHPUT, EPOCH_TIME, SCALING)
WORKER_MODES = (TTA, EPOCH_TIME)  # what a rank trains (a throughput instance is a tta run)
PATH_FIELDS = ("results", "data", "heldout_data", "checkpoint", "hostfile", "export_generator", "checkpoint_dir")


@dataclass(frozen=True)
class RunRequest:
    """Every `harness run` flag, typed; field names are argparse's dests, in `--help` order.

    Paths are kept as typed (`absolute_paths` resolves them for ranks and batch jobs that start
    elsewhere); comma-separated lists are tuples. Defaults live in the parser only: build a
    request from flags (`from_argv`) or a parsed namespace (`from_namespace`)."""

    # what to run
    benchmark: str
    mode: Optional[str]  # None: the main job (one node) or the submission set (--nodes > 1)
    data: Optional[str]
    results: str
    epochs: int
    seed: int
    smoke: bool
    checkpoint: Optional[str]
    precision: Optional[str]
    dry_run: bool
    # training (tta, epoch-time, scaling, throughput)
    per_rank_batch: int
    learning_rate: float
    warmup_epochs: int
    eval_every_samples: Optional[int]
    lr_decay: Optional[tuple[int, int, float]]
    ema_horizon_samples: Optional[int]
    max_steps_per_epoch: Optional[int]
    train_fraction: float
    heldout_data: Optional[str]
    resume: bool
    hang_timeout: float
    export_generator: Optional[str]
    ranks_list: Optional[tuple[int, ...]]
    instances: int
    scaling_type: Optional[str]
    emulate_ranks: int
    # launching
    nodes: int
    ranks_per_node: int
    cores_per_rank: Optional[int]
    intra_op_threads: Optional[int]
    inter_op_threads: int
    launcher: str
    hostfile: Optional[str]
    oversubscribe: bool
    partition: Optional[str]
    account: Optional[str]
    time_limit: str
    submit: bool
    system_name: Optional[str]
    # a rank's re-entry (hidden flags set by the parent `harness run`)
    worker: bool
    log_file: Optional[str]
    summary_file: Optional[str]
    checkpoint_dir: Optional[str]
    # inference
    intra_op: Optional[tuple[int, ...]]
    inter_op: tuple[int, ...]
    streams: Optional[tuple[int, ...]]
    batch: tuple[int, ...]
    duration: float
    warmup_batches: int
    scenarios: Optional[str]
    loadgen: bool
    loadgen_duration: float
    loadgen_queries: Optional[int]
    server_qps: Optional[float]
    server_latency_ms: Optional[float]
    official: bool
    server_search: int
    roofline_size: int
    target: Optional[str]
    no_quality_gate: bool
    quick: bool

    def __post_init__(self) -> None:
        if self.mode not in (None, *MODES):
            raise InputError(f"--mode {self.mode}: choose one of {', '.join(MODES)}")
        if self.trains:
            from benchmark.recipe import get_recipe

            precisions = get_recipe(self.benchmark).precisions

            if self.precision not in (None, *precisions):
                raise InputError(f"--precision {self.precision}: training supports {' or '.join(precisions)}")
        if self.mode == THROUGHPUT:
            if self.instances < 2:
                raise InputError(f"--instances {self.instances}: the throughput metric trains M >= 2 instances "
                                 "at once; one instance is a time-to-accuracy run (--mode tta)")
            if self.resume:
                raise InputError("--resume: a throughput instance must train uninterrupted, as a "
                                 "time-to-accuracy run")
        if self.ema_horizon_samples is not None and self.ema_horizon_samples <= self.global_batch:
            raise InputError(f"--ema-horizon-samples {self.ema_horizon_samples}: a moving average must span more "
                             f"than one step's global batch ({self.global_batch:,} samples); give a larger N")
        if self.heldout_data and (not self.data or self.mode not in (TTA, THROUGHPUT)):
            raise InputError(f"--heldout-data {self.heldout_data}: a held-out set of its own is for a run trained "
                             "to the target (--mode tta or throughput) on --data; without --data such a run "
                             "makes the benchmark's reference training and held-out sets")
        if self.emulate_ranks > 1 and (self.mode != TTA or self.ranks > 1):
            raise InputError(f"--emulate-ranks {self.emulate_ranks}: emulation is time-to-accuracy arithmetic "
                             "in one process; use it with --mode tta on 1 node x 1 rank")
        if self.mode == INFERENCE:
            if self.warmup_batches < 1:
                raise InputError(f"--warmup-batches {self.warmup_batches}: at least 1 batch must run untimed "
                                 "(graph tracing and kernel selection happen in the first call)")
            if self.server_search < 0:
                raise InputError(f"--server-search {self.server_search}: give a number of LoadGen runs, 0 or more")
            if self.target is not None and (self.smoke or self.no_quality_gate):
                raise InputError(f"--target {self.target}: names the thresholds the checkpoint is checked "
                                 "against; drop --smoke or --no-quality-gate, which check against none")
            if self.roofline_size < 64:
                raise InputError(f"--roofline-size {self.roofline_size}: too small to measure a roofline; "
                                 "use 1024 or more")
        if self.worker:
            missing = [flag for flag, value in (("--log-file", self.log_file), ("--summary-file", self.summary_file),
                                                ("--checkpoint-dir", self.checkpoint_dir)) if not value]
            if self.mode not in WORKER_MODES or missing:
                raise InputError("--worker is how a rank re-enters `harness run` (the parent sets it with --mode "
                                 f"{' or '.join(WORKER_MODES)}, --log-file, --summary-file and --checkpoint-dir); "
                                 "run the benchmark without --worker")

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> RunRequest:
        """The request of a parsed `harness run` command line (lists become tuples)."""
        values = vars(namespace)
        return cls(**{f.name: _frozen(values[f.name]) for f in dataclasses.fields(cls)})

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> RunRequest:
        """The request of the flags that follow `harness run` (argparse's errors exit as usual)."""
        return cls.from_namespace(run_parser().parse_args(list(argv)))

    # -- reading -------------------------------------------------------------------------------
    @property
    def trains(self) -> bool:
        """Whether this request trains: a training mode, or the submission set (--nodes > 1, no --mode)."""
        return self.mode in TRAINING_MODES or (self.mode is None and self.nodes > 1)

    @property
    def ranks(self) -> int:
        return self.nodes * self.ranks_per_node

    @property
    def global_batch(self) -> int:
        """Samples per optimiser update: every rank's batch, emulated ranks included."""
        return self.per_rank_batch * self.ranks * self.emulate_ranks

    def absolute_paths(self) -> RunRequest:
        """The same request with every path absolute: what a rank or a batch job, started in
        another directory or on another node, must be given."""
        return with_changes(self, **{name: str(Path(getattr(self, name)).resolve())
                                     for name in PATH_FIELDS if getattr(self, name)})

    def record(self) -> dict:
        """The arguments as a result records them (the keys argparse's namespace had, in order)."""
        return {"command": "run", **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


def with_changes(request: RunRequest, **changes) -> RunRequest:
    """A copy of `request` with `changes` applied (checked like any request)."""
    return dataclasses.replace(request, **{key: _frozen(value) for key, value in changes.items()})


def to_argv(request: RunRequest, flags: Optional[Sequence[str]] = None, keep: Collection[str] = ()) -> list[str]:
    """The `harness run` flags that rebuild `request` (without the leading `run`).

    `flags`: the fields to write, in that order; by default every flag `harness run --help`
    shows, in its order. A field is written when it is set and differs from its default, or
    when it is in `keep`; a switch when it is on. Paths are written as they are in the request."""
    actions = {action.dest: action for action in run_parser()._actions if action.option_strings}
    if flags is None:
        flags = [dest for dest, action in actions.items()
                 if action.help != argparse.SUPPRESS and dest != "help"]
    argv: list[str] = []
    for dest in flags:
        action, value = actions[dest], getattr(request, dest)
        if value is None or (value == _frozen(action.default) and dest not in keep):
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0] if value else action.option_strings[1])
        elif action.nargs == 0:
            argv += [flag] if value else []
        else:
            argv += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return argv


def run_parser() -> argparse.ArgumentParser:
    """The parser of `harness run`'s flags (harness.commands.run.register owns them)."""
    from harness.commands.run import register

    subparsers = argparse.ArgumentParser(prog="harness").add_subparsers()
    register(subparsers)
    return subparsers.choices["run"]


def _frozen(value):
    return tuple(value) if isinstance(value, list) else value
