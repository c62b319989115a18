"""The submission tree: where every result goes, written so that nothing is lost or faked.

Layout under a results root (MLPerf HPC for training, MLPerf Inference for inference):

    systems/<system>.json                                    system description (harness.sysinfo)
    results/<system>/strong/<benchmark>/result_<i>.txt       time to accuracy (MLPerf HPC "time to
    results/<system>/strong/<benchmark>/result_<i>.json        solution"): MLPerf log and its summary
    results/<system>/weak/<benchmark>/result_<i>.txt|.json   throughput (MLPerf HPC "weak scaling"):
                                                             one log per model instance of a set of M
                                                             instances trained concurrently to the target
    results/<system>/epoch_time/<benchmark>/result_<i>.txt|.json  epoch-time (training speed) runs
    results/<system>/scaling/<benchmark>/series_<i>.json|.txt  epoch time against rank count
    results/<system>/<benchmark>/<Scenario>/performance/run_<i>/
        mlperf_log_summary.txt, mlperf_log_detail.txt        LoadGen's logs
        result.json                                          ... and the summary
    results/<system>/<benchmark>/sweeps/sweep_<i>.json|.txt  thread/stream/batch/precision sweeps
    checkpoints/<system>/<benchmark>/<mode>/                 resumable training state (not results)

Rules the functions enforce:
- a run gets a number no earlier run (finished, running or killed) has used, reserved by an
  exclusive create of its `.partial` name and checked after against its final name, so a
  relaunch never appends to an earlier run's file and concurrent runs (on any nodes sharing the
  root) never share a number;
- a run that is still being written lives under a `.partial` name and is renamed to its final
  name by `finish_run` / `finish_inference_run`, so only finished runs look finished;
- a training run's finish is recoverable: the stamped summary is written first (still under its
  `.partial` name), then the log and the summary are renamed; a finish interrupted in between is
  completed by `complete_interrupted_finishes` (called before every new run in that folder) and
  reported by `harness check` until then;
- every JSON file is written atomically (temp file, fsync, `os.replace`); the system description's
  read-modify-write holds its `reference_model.shared_lock` (which works across nodes, where
  fcntl locks may not), so concurrent runs keep each other's updates.
`Recorder` is how a `harness run` path takes these steps: one object per run (root and system)
that reserves, describes the system, and finishes or records the abort.

Summary schema (`schema` = SCHEMA_VERSION), one JSON object per result. Common to every kind:
    schema, mode ("tta" | "throughput" | "epoch-time" | "scaling" | "inference"), benchmark, system,
    status ("success" | "aborted"), submittable (false for smoke runs), command (the exact
    command line that ran it), started_at, finished_at (ISO 8601 UTC); training summaries
    also get harness_command (the user's `harness run ...` that launched the ranks)
Training (tta, throughput, epoch-time), written by the trainer through `write_summary`:
    seconds (run_start to run_stop), samples, ranks, nodes, ranks_per_node, per_rank_batch,
    global_batch, precision, steady_samples_per_second (after the first epoch), epochs
    ([{epoch, seconds, samples, evaluated, passed, objective}]), quality (the quality report
    of the last evaluation, tta), reason (why it aborted), threads ({intra_op, inter_op}: the
    pools of each rank, 0 for TensorFlow's default), rank0_cpus ({host, logical_cpus,
    physical_cores} of rank 0);
    a run whose ranks ended before rank 0 wrote its summary has only the common fields, reason
    and rank0_summary false (an attempt that measured nothing)
Throughput instances also get instance ({set: the first result number of the set, index: 1..M,
    instances: M}); each instance is a time-to-accuracy run, and its log says so (benchmark_mode tta)
Scaling (`write_scaling_series`): rows ([{scaling: strong|weak, ranks, per_rank_batch,
    global_batch, status, samples_per_second, epoch_seconds, speedup, efficiency}]), arguments
Inference (`finish_inference_run`): scenario, samples_per_second, valid (LoadGen "Result is
    VALID"), latency_ns ({"50.00": ..., "90.00": ...}), settings ({intra_op_threads,
    inter_op_threads, streams, batch_size, precision}), min_duration_ms, official_minimum
    (whether LoadGen's settings met MLPerf's official minimum duration/queries), quality
    (the physics gate on showers generated at that precision); an aborted inference run (an
    attempt: rules.md section 9) has reason and loadgen_runs (the LoadGen runs it had started)
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from benchmark.vocabulary import (EPOCH_TIME, INFERENCE, MULTI_STREAM, OFFLINE, SCALING, SCENARIOS, SERVER,
                                  SINGLE_STREAM, THROUGHPUT, TTA)
from reference_model.atomic_files import write_json_atomic, write_text_atomic
from reference_model.errors import InputError
from reference_model.shared_lock import SharedLock

SCHEMA_VERSION = 1
PARTIAL = ".partial"
# MLPerf HPC: strong/ is time to solution, weak/ the throughput metric; epoch time is ours.
TRAINING_FOLDERS = {TTA: "strong", THROUGHPUT: "weak", EPOCH_TIME: "epoch_time"}
# The benchmark_mode a run's MLPerf log records: a throughput instance trains to the target.
LOG_MODES = {TTA: TTA, THROUGHPUT: TTA, EPOCH_TIME: EPOCH_TIME}
SCALING_FOLDER = SCALING
SWEEP_FOLDER = "sweeps"
# The order a report lists LoadGen scenarios in: by query size, one sample to a whole batch.
SCENARIO_REPORT_ORDER = (SINGLE_STREAM, MULTI_STREAM, SERVER, OFFLINE)
LOADGEN_LOGS = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")

COMMON_FIELDS = ("schema", "mode", "benchmark", "system", "status", "submittable", "command",
                 "started_at", "finished_at")
REQUIRED_FIELDS = {
    TTA: COMMON_FIELDS + ("seconds", "samples", "ranks", "nodes", "ranks_per_node",
                          "per_rank_batch", "global_batch", "precision", "epochs", "quality"),
    THROUGHPUT: COMMON_FIELDS + ("seconds", "samples", "ranks", "nodes", "ranks_per_node",
                                 "per_rank_batch", "global_batch", "precision", "epochs", "quality",
                                 "instance"),
    EPOCH_TIME: COMMON_FIELDS + ("seconds", "samples", "ranks", "nodes", "ranks_per_node",
                                 "per_rank_batch", "global_batch", "precision", "epochs",
                                 "steady_samples_per_second"),
    SCALING: COMMON_FIELDS + ("rows",),
    INFERENCE: COMMON_FIELDS + ("scenario", "samples_per_second", "valid", "settings",
                                "min_duration_ms", "official_minimum"),
}
STATUSES = ("success", "aborted")
# A training run whose ranks ended before rank 0 wrote its summary records only why (`unmeasured_summary`).
RANK0_SUMMARY = "rank0_summary"
UNMEASURED_FIELDS = COMMON_FIELDS + ("reason", RANK0_SUMMARY)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


# -- atomic files ----------------------------------------------------------------------------
def write_summary(path: Path, summary: dict) -> Path:
    """Write a result's summary (schema above) atomically; stamps the schema version."""
    return write_json_atomic(path, {"schema": SCHEMA_VERSION, **summary})


def _read_json(path: Path, damaged: str) -> Optional[dict]:
    """The JSON document at `path`, None if there is none, a one-line error naming `damaged`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); {damaged}") from None


def read_summary(path: Path) -> Optional[dict]:
    """The result summary at `path`, or None if there is none."""
    return _read_json(path, "the summary is damaged, rerun the result")


def validate_summary(summary: dict) -> list[str]:
    """Problems with a summary against the schema (an empty list when it is complete)."""
    mode = summary.get("mode")
    if mode not in REQUIRED_FIELDS:
        return [f"mode {mode!r} is not one of {', '.join(REQUIRED_FIELDS)}"]
    unmeasured = unmeasured_training_run(summary)
    required = UNMEASURED_FIELDS if unmeasured else REQUIRED_FIELDS[mode]
    problems = [f"missing field {name!r}" for name in required if name not in summary]
    if unmeasured and summary.get("status") != "aborted":
        problems.append(f"status {summary.get('status')!r} without rank 0's summary: only aborted")
    if summary.get("schema") not in (None, SCHEMA_VERSION):
        problems.append(f"schema {summary.get('schema')!r}, this harness reads {SCHEMA_VERSION}")
    if "status" in summary and summary["status"] not in STATUSES:
        problems.append(f"status {summary['status']!r} is not success or aborted")
    return problems


# -- systems ---------------------------------------------------------------------------------
def system_description_path(root: Path, system: str) -> Path:
    return Path(root) / "systems" / f"{system}.json"


def read_system_description(root: Path, system: str) -> Optional[dict]:
    """`systems/<system>.json` under a results root, or None if it was never written."""
    return _read_json(system_description_path(root, system), "the description is damaged: rewrite it with "
                      f"harness sysinfo --json --system-name {system}")


def system_name(requested: Optional[str] = None) -> str:
    """The system name: the flag, else HARNESS_SYSTEM_NAME, else derived (harness.sysinfo)."""
    from harness.sysinfo import default_system_name, describe_cpu, validate_system_name

    name = requested or os.environ.get("HARNESS_SYSTEM_NAME")
    if name:
        return validate_system_name(name)
    cpu = describe_cpu()
    return default_system_name(cpu["model_name"], cpu["microarchitecture"])


def write_system_description(root: Path, system: str, nodes: int = 1,
                             identity=None) -> Path:
    """Describe this machine as `systems/<system>.json`.

    A system name always means one kind of machine: if the file exists and describes other
    hardware or another division, this refuses rather than mixing results. `number_of_nodes`
    keeps the largest node count the system has run with.
    """
    from harness.sysinfo import describe_system, hardware_differences, identity_from_environment

    identity = dataclasses.replace(identity or identity_from_environment(), system_name=system)
    description = describe_system(identity, nodes=nodes)
    path = system_description_path(root, system)
    with SharedLock(path, "updating"):
        existing = read_system_description(root, system)
        if existing is not None:
            differences = hardware_differences(existing, description)
            if existing.get("division") != description["division"]:
                differences.append(f"division: {existing.get('division')!r} vs {description['division']!r}")
            if differences:
                raise InputError(f"{path} describes another system ({'; '.join(differences)}); "
                                 "choose another --system-name or results root")
            description["number_of_nodes"] = max(int(existing.get("number_of_nodes", 1)), nodes)
        return write_json_atomic(path, description)


# -- training runs ---------------------------------------------------------------------------
def training_dir(root: Path, system: str, benchmark: str, mode: str, emulated: bool = False) -> Path:
    """Where a training run's result goes; a run with emulated ranks (convergence evidence, never
    a timing) goes under `emulated/`, beside the submission tree `results/` and never in it."""
    if mode not in TRAINING_FOLDERS:
        raise ValueError(f"training mode {mode!r}: expected one of {', '.join(TRAINING_FOLDERS)}")
    return Path(root) / ("emulated" if emulated else "results") / system / TRAINING_FOLDERS[mode] / benchmark


def checkpoint_dir(root: Path, system: str, benchmark: str, mode: str) -> Path:
    return Path(root) / "checkpoints" / system / benchmark / mode


@dataclass
class TrainingRun:
    """One training run's files: `log` and `summary` are where the run writes while it runs."""

    system: str
    benchmark: str
    mode: str
    index: int
    directory: Path
    started_at: Optional[str]  # None for a run found unfinished (`unfinished_training_run`)
    stamp: dict = field(default_factory=dict)  # added to the summary at the finish (a throughput instance)

    @property
    def final_log(self) -> Path:
        return self.directory / f"result_{self.index}.txt"

    @property
    def final_summary(self) -> Path:
        return self.directory / f"result_{self.index}.json"

    @property
    def log(self) -> Path:
        return self.final_log.with_name(self.final_log.name + PARTIAL)

    @property
    def summary(self) -> Path:
        return self.final_summary.with_name(self.final_summary.name + PARTIAL)


_NUMBERED = re.compile(r"^(?:result|run|series|sweep)_(\d+)(?:\.[A-Za-z]+)*$")


def _next_index(directory: Path) -> int:
    """One past the highest number any entry in `directory` uses (finished or partial)."""
    numbers = [int(m.group(1)) for p in directory.glob("*") if (m := _NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


def _reserve(directory: Path, make_name, create) -> int:
    """Claim the next free number by an exclusive create of its `.partial` name (one process
    wins it, on any node: O_EXCL and mkdir are atomic on NFS, Lustre and GPFS); retry past a
    concurrent claim, and past a number whose run finished (renamed its `.partial` name away)
    after the listing was taken: a shared file system's listing can be seconds old."""
    directory.mkdir(parents=True, exist_ok=True)
    index = _next_index(directory)
    while True:
        claim = directory / make_name(index)
        try:
            create(claim)
        except FileExistsError:
            index += 1
            continue
        if not claim.with_name(claim.name[:-len(PARTIAL)]).exists():
            return index
        if claim.is_dir():
            claim.rmdir()
        else:
            claim.unlink()
        index += 1


def _create_exclusive(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def allocate_training_run(root: Path, system: str, benchmark: str, mode: str,
                          dry_run: bool = False, emulated: bool = False) -> TrainingRun:
    """Reserve `result_<i>` for a new training run (the log file is created empty), after
    completing any interrupted finish in its folder.

    With `dry_run` nothing is created: the paths are what the next run would use.
    """
    directory = training_dir(root, system, benchmark, mode, emulated)
    if dry_run:
        index = _next_index(directory) if directory.is_dir() else 1
    else:
        if directory.is_dir():
            complete_interrupted_finishes(directory)
        index = _reserve(directory, lambda i: f"result_{i}.txt{PARTIAL}", _create_exclusive)
    return TrainingRun(system=system, benchmark=benchmark, mode=mode, index=index,
                       directory=directory, started_at=utc_now())


def finish_run(run: TrainingRun) -> Path:
    """Give a training run its final names; returns the final summary path.

    Three steps, each atomic, in an order a crash cannot turn into a lie: (1) the summary,
    stamped with the system, the result's times and its log, replaces rank 0's summary under
    its `.partial` name (from here on the finish can be completed without this process);
    (2) the log gets its final name; (3) the summary gets its final name. A crash before (1)
    leaves an unfinished run, after it an interrupted finish that `complete_finish` completes.
    """
    summary = read_summary(run.summary) or unmeasured_summary(run, "the run ended without writing a summary")
    write_summary(run.summary, {**summary, **run.stamp, "mode": run.mode, "system": run.system,
                                "started_at": run.started_at, FINISHED: utc_now(),
                                "log": run.final_log.name, "harness_command": harness_command()})
    return complete_finish(run.summary)


FINISHED = "finished_at"  # stamped by finish_run only: a partial summary with it is a begun finish


def unfinished_training_run(path: Path) -> TrainingRun:
    """The training run an unfinished `result_<i>.txt.partial` (or `.json.partial`) belongs to."""
    path = Path(path)
    match = re.fullmatch(rf"result_(\d+)\.(?:txt|json){re.escape(PARTIAL)}", path.name)
    mode = {folder: mode for mode, folder in TRAINING_FOLDERS.items()}.get(path.parent.parent.name)
    if match is None or mode is None or not path.is_file():
        raise InputError(f"{path}: not an unfinished training run's file "
                         "(ROOT/results/SYSTEM/strong|weak|epoch_time/BENCHMARK/result_N.txt.partial)")
    return TrainingRun(system=path.parents[2].name, benchmark=path.parent.name, mode=mode, index=int(match[1]),
                       directory=path.parent, started_at=None)


def abort_training_run(run: TrainingRun, reason: str, record: dict) -> Path:
    """Finish a training run whose launcher is gone: as rank 0 left it where it wrote its summary
    (the run ended; only the finish was missing), else as aborted for `reason`, its log closed with
    run_stop aborted, so its number is no missing run. Returns the final summary path."""
    from harness.mlperf_log import record_abort_if_unfinished

    if read_summary(run.summary) is None:
        record_abort_if_unfinished(run.log, reason)
        write_summary(run.summary, {**unmeasured_summary(run, reason), **record})
    return finish_run(run)


def unmeasured_summary(run: TrainingRun, reason: str, command: Optional[str] = None) -> dict:
    """The summary of a training run whose ranks ended before rank 0 wrote one: an attempt that
    measured nothing (`rank0_summary` false), kept under its number; no result counts it and a
    submission refuses it (rules.md section 11)."""
    return {"status": "aborted", "reason": reason, "mode": run.mode, "benchmark": run.benchmark,
            "submittable": False, "command": command, RANK0_SUMMARY: False}


def unmeasured_training_run(summary: dict) -> bool:
    """Whether a summary is `unmeasured_summary`'s: a training attempt with nothing measured."""
    return summary.get("mode") in TRAINING_FOLDERS and summary.get(RANK0_SUMMARY) is False


def complete_finish(partial_summary: Path) -> Path:
    """Rename a stamped run's log, then its summary, to their final names (steps 2 and 3 of
    `finish_run`); safe to repeat. Returns the final summary path."""
    partial_summary = Path(partial_summary)
    final_summary = partial_summary.with_name(partial_summary.name[:-len(PARTIAL)])
    partial_log = final_summary.with_suffix(f".txt{PARTIAL}")
    if partial_log.exists():
        os.replace(partial_log, final_summary.with_suffix(".txt"))
    os.replace(partial_summary, final_summary)
    _fsync_directory(final_summary.parent)
    return final_summary


def interrupted_finishes(directory: Path) -> list[Path]:
    """Partial summaries in `directory` whose finish began (stamped) but did not complete."""
    found = []
    for path in sorted(Path(directory).glob(f"result_*.json{PARTIAL}")):
        try:
            summary = read_summary(path)
        except InputError:
            continue  # damaged: left for the check to report
        if isinstance(summary, dict) and FINISHED in summary:
            found.append(path)
    return found


def complete_interrupted_finishes(directory: Path) -> list[Path]:
    """Complete every interrupted finish in `directory`; returns the final summaries."""
    return [complete_finish(path) for path in interrupted_finishes(directory)]


def _fsync_directory(directory: Path) -> None:
    """Make renames in `directory` durable (a rename is only as durable as its folder)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- scaling series --------------------------------------------------------------------------
def write_scaling_series(root: Path, benchmark: str, rows: list[dict], arguments: dict,
                         system: Optional[str] = None, started_at: Optional[str] = None) -> Path:
    """Record an epoch-time scaling series as `scaling/<benchmark>/series_<i>.json` plus a
    readable table beside it; returns the JSON path. `started_at` (utc_now() before the first
    point) is recorded as null when the caller did not take it."""
    from tabulate import tabulate

    system = system or system_name(arguments.get("system_name"))
    directory = Path(root) / "results" / system / SCALING_FOLDER / benchmark
    index = _reserve(directory, lambda i: f"series_{i}.json{PARTIAL}", _create_exclusive)
    partial = directory / f"series_{index}.json{PARTIAL}"
    status = "success" if rows and all(r.get("status") == "success" for r in rows) else "aborted"
    series = {"schema": SCHEMA_VERSION, "mode": SCALING, "benchmark": benchmark, "system": system,
              "status": status, "submittable": not arguments.get("smoke", False),
              "command": harness_command(),
              "started_at": started_at, "finished_at": utc_now(),
              "rows": rows, "arguments": arguments}
    columns = ("scaling", "ranks", "per_rank_batch", "global_batch", "samples_per_second",
               "epoch_seconds", "speedup", "efficiency")
    write_text_atomic(directory / f"series_{index}.txt",
                      tabulate([[r.get(c) for c in columns] for r in rows], headers=columns,
                               floatfmt=".4g") + "\n")
    path = write_json_atomic(directory / f"series_{index}.json", series)
    partial.unlink(missing_ok=True)
    return path


def harness_command() -> str:
    """The command line of this harness process, as the user typed it."""
    return shlex.join(["harness", *sys.argv[1:]])


# -- inference -------------------------------------------------------------------------------
@dataclass
class InferenceRun:
    """One LoadGen run: LoadGen writes its logs into `directory` while it runs."""

    system: str
    benchmark: str
    scenario: str
    index: int
    parent: Path
    started_at: Optional[str]  # None for a folder found unfinished (`unfinished_inference_run`)

    @property
    def final_directory(self) -> Path:
        return self.parent / f"run_{self.index}"

    @property
    def directory(self) -> Path:
        return self.parent / f"run_{self.index}{PARTIAL}"


def inference_dir(root: Path, system: str, benchmark: str, scenario: str) -> Path:
    if scenario not in SCENARIOS:
        raise InputError(f"scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    return Path(root) / "results" / system / benchmark / scenario / "performance"


def allocate_inference_run(root: Path, system: str, benchmark: str, scenario: str) -> InferenceRun:
    """Reserve `run_<i>` (created as `run_<i>.partial/`) for LoadGen's output of one setting."""
    parent = inference_dir(root, system, benchmark, scenario)
    index = _reserve(parent, lambda i: f"run_{i}{PARTIAL}", lambda p: p.mkdir())
    return InferenceRun(system=system, benchmark=benchmark, scenario=scenario, index=index,
                        parent=parent, started_at=utc_now())


def finish_inference_run(run: InferenceRun, summary: dict) -> Path:
    """Write `result.json` beside LoadGen's logs and give the run its final name."""
    missing = [name for name in LOADGEN_LOGS if not (run.directory / name).is_file()]
    if missing:
        raise InputError(f"{run.directory}: LoadGen did not write {', '.join(missing)}; "
                         "point LoadGen's log_output.outdir at the run directory")
    summary = {**summary, "mode": INFERENCE, "benchmark": run.benchmark, "system": run.system,
               "scenario": run.scenario, "started_at": run.started_at, "finished_at": utc_now()}
    write_summary(run.directory / "result.json", summary)
    os.rename(run.directory, run.final_directory)
    return run.final_directory / "result.json"


def abort_inference_run(run: InferenceRun, reason: str, command: Optional[str],
                        record: Optional[dict] = None) -> Path:
    """Record a LoadGen run that ended before its result (a search that found no rate, a SIGTERM,
    a launcher that died) as an aborted attempt under its final name: its number stays used and
    `harness check` lists it as not counted (rules.md section 9). What LoadGen wrote stays beside
    it, named in `loadgen_runs`; `record` adds what the run knew (its search so far)."""
    ran = sorted(p.name for p in run.directory.iterdir() if p.is_dir())
    summary = {"status": "aborted", "submittable": False, "reason": reason, "command": command,
               "samples_per_second": None, "valid": False, "settings": {}, "min_duration_ms": None,
               "official_minimum": False, "loadgen_runs": ran, **(record or {}), "mode": INFERENCE,
               "benchmark": run.benchmark, "system": run.system, "scenario": run.scenario,
               "started_at": run.started_at, "finished_at": utc_now()}
    write_summary(run.directory / "result.json", summary)
    os.rename(run.directory, run.final_directory)
    return run.final_directory / "result.json"


def unfinished_inference_run(directory: Path) -> InferenceRun:
    """The LoadGen run an unfinished `.../<Scenario>/performance/run_<i>.partial` folder is."""
    directory = Path(directory)
    match = re.fullmatch(rf"run_(\d+){re.escape(PARTIAL)}", directory.name)
    scenario_dir = directory.parent.parent
    if match is None or not directory.is_dir() or directory.parent.name != "performance" \
            or scenario_dir.name not in SCENARIOS:
        raise InputError(f"{directory}: not an unfinished LoadGen run folder "
                         "(ROOT/results/SYSTEM/BENCHMARK/SCENARIO/performance/run_N.partial)")
    if (directory / "result.json").exists():
        raise InputError(f"{directory}: it has its result.json, so the run finished and only its rename "
                         f"is missing: rename it to run_{match[1]}")
    return InferenceRun(system=scenario_dir.parent.parent.name, benchmark=scenario_dir.parent.name,
                        scenario=scenario_dir.name, index=int(match[1]), parent=directory.parent, started_at=None)


def write_sweep_table(root: Path, system: str, benchmark: str, rows: list[dict],
                      arguments: dict) -> Path:
    """Record an inference sweep (one row per setting, with its run directory) as
    `sweeps/sweep_<i>.json` plus a readable table; returns the JSON path."""
    from tabulate import tabulate

    directory = Path(root) / "results" / system / benchmark / SWEEP_FOLDER
    index = _reserve(directory, lambda i: f"sweep_{i}.json{PARTIAL}", _create_exclusive)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "scenario", k))
    write_text_atomic(directory / f"sweep_{index}.txt",
                      tabulate([[r.get(c) for c in columns] for r in rows], headers=columns,
                               floatfmt=".4g") + "\n")
    path = write_json_atomic(directory / f"sweep_{index}.json",
                             {"schema": SCHEMA_VERSION, "benchmark": benchmark, "system": system,
                              "written_at": utc_now(), "rows": rows, "arguments": arguments})
    (directory / f"sweep_{index}.json{PARTIAL}").unlink(missing_ok=True)
    return path


# -- one run's life -------------------------------------------------------------------------
@dataclass(frozen=True)
class Recorder:
    """Where one `harness run` records its results, and every step of a result's life there, in
    order: reserve a number (completing interrupted finishes in its folder first), describe the
    system, and finish (rank 0's summary stamped and renamed, or the run recorded as aborted when
    the ranks died before writing one). The tta, epoch-time, throughput and inference paths (and
    every point of a scaling series, through the tta/epoch-time path) go through it. A dry run's
    recorder names the paths the next run would use and writes nothing."""

    root: Path
    system: str
    dry_run: bool = False

    @classmethod
    def open(cls, root: Path, requested_system: Optional[str] = None, dry_run: bool = False) -> Recorder:
        """The recorder of `root` (kept as given) under the system name `system_name` resolves."""
        return cls(Path(root), system_name(requested_system), dry_run)

    def describe_system(self, nodes: int = 1) -> Optional[Path]:
        """Write `systems/<system>.json` (`write_system_description`); nothing in a dry run."""
        return None if self.dry_run else write_system_description(self.root, self.system, nodes=nodes)

    def checkpoint_dir(self, benchmark: str, mode: str, requested: Optional[str] = None) -> Path:
        """Where a run keeps its resumable state: `requested` (--checkpoint-dir), else
        `checkpoints/<system>/<benchmark>/<mode>/` under the root."""
        return Path(requested).resolve() if requested else checkpoint_dir(self.root, self.system, benchmark, mode)

    # training
    def reserve_training(self, benchmark: str, mode: str, emulated: bool = False) -> TrainingRun:
        return allocate_training_run(self.root, self.system, benchmark, mode, dry_run=self.dry_run,
                                     emulated=emulated)

    def reserve_instances(self, benchmark: str, count: int) -> list[TrainingRun]:
        """Reserve one throughput result per instance of a set of `count` (consecutive numbers:
        the set is named by the first), each stamped with its `instance` record."""
        runs = [self.reserve_training(benchmark, THROUGHPUT) for _ in range(count)]
        if self.dry_run:
            runs = [dataclasses.replace(runs[0], index=runs[0].index + i) for i in range(count)]
        for index, run in enumerate(runs, start=1):
            run.stamp = {"instance": {"set": runs[0].index, "index": index, "instances": count}}
        return runs

    def finish_training(self, run: TrainingRun, returncode: int, ranks: int, command: list[str],
                        launch: dict) -> dict:
        """Read rank 0's summary (or, if the ranks died first, record the run as aborted), add how
        the ranks were placed (`launch`), and give the run its final names (`finish_run`).
        Returns the final summary."""
        from harness.mlperf_log import record_abort_if_unfinished

        summary = read_summary(run.summary)
        if summary is None:
            reason = f"ranks exited with code {returncode} before rank 0 wrote its summary"
            record_abort_if_unfinished(run.log, reason)
            summary = {**unmeasured_summary(run, reason, shlex.join(command)), "ranks": ranks}
            print(f"harness run: error: {reason}; see {run.log}", file=sys.stderr)
        write_summary(run.summary, {**summary, "launch": launch})
        return read_summary(finish_run(run)) or {}

    # inference
    def reserve_inference(self, benchmark: str, scenario: str) -> InferenceRun:
        return allocate_inference_run(self.root, self.system, benchmark, scenario)

    def finish_inference(self, run: InferenceRun, summary: dict) -> Path:
        return finish_inference_run(run, summary)

    def abort_inference(self, run: InferenceRun, reason: str, record: Optional[dict] = None) -> Path:
        return abort_inference_run(run, reason, harness_command(), record)

    def write_sweep(self, benchmark: str, rows: list[dict], arguments: dict) -> Path:
        return write_sweep_table(self.root, self.system, benchmark, rows, arguments)


# -- reading a tree --------------------------------------------------------------------------
@dataclass
class ResultFile:
    """A finished result found in a tree: its summary, and its log where it has one."""

    system: str
    benchmark: str
    mode: str
    summary_path: Path
    log_path: Optional[Path]
    summary: dict


def require_root(root: Path) -> Path:
    """`root` if it is a results root (it holds results/), else one line saying what to pass: a
    folder one level above a root (this repository's own, whose results/ holds systems/ and
    results/) would otherwise read the root's folders as systems."""
    root = Path(root)
    inner = root / "results"
    if (inner / "results").is_dir() and (inner / "systems").is_dir() and not (root / "systems").is_dir():
        raise InputError(f"{root}: its results/ folder is itself a results root (it holds systems/ and results/); "
                         f"pass {inner}")
    if not inner.is_dir():
        raise InputError(f"{root}: no results/ folder; pass the results root that `harness run --results` wrote "
                         "(it holds systems/ and results/)")
    return root


def iter_results(root: Path) -> list[ResultFile]:
    """Every finished result under `root/results`, in a stable order."""
    base = Path(root) / "results"
    found = []
    for system_dir in sorted(p for p in base.glob("*") if p.is_dir()):
        for mode, folder in TRAINING_FOLDERS.items():
            for summary_path in sorted(system_dir.glob(f"{folder}/*/result_*.json"), key=_number):
                log = summary_path.with_suffix(".txt")
                found.append(ResultFile(system_dir.name, summary_path.parent.name, mode, summary_path,
                                        log if log.exists() else None, _load(summary_path)))
        for summary_path in sorted(system_dir.glob(f"{SCALING_FOLDER}/*/series_*.json"), key=_number):
            found.append(ResultFile(system_dir.name, summary_path.parent.name, SCALING, summary_path,
                                    None, _load(summary_path)))
        for scenario in SCENARIO_REPORT_ORDER:
            for summary_path in sorted(system_dir.glob(f"*/{scenario}/performance/run_*/result.json"),
                                       key=lambda p: _number(p.parent)):
                detail = summary_path.with_name("mlperf_log_detail.txt")
                found.append(ResultFile(system_dir.name, summary_path.parents[3].name, INFERENCE,
                                        summary_path, detail if detail.exists() else None,
                                        _load(summary_path)))
    return found


def unfinished_entries(root: Path) -> list[Path]:
    """Files and folders still under a `.partial` name: running, or left by a dead launcher."""
    return sorted(p for p in (Path(root) / "results").rglob(f"*{PARTIAL}"))


def _number(path: Path) -> int:
    match = _NUMBERED.match(path.name)
    return int(match.group(1)) if match else 0


def _load(path: Path) -> dict:
    summary = read_summary(path)
    return summary if isinstance(summary, dict) else {}
