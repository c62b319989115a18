"""MLPerf logging for one training run: `mlperf_logging.mllog` lines, from rank 0 only, into
the run's own log file (the `result_<i>.txt` that `harness.results` reserved).

The sequence a training run emits; `benchmark/compliance/<benchmark>.yaml` checks it:

  written by MLPerfLogger itself when it opens the log (who and where):
    submission_benchmark, submission_org, submission_division, submission_status,
    submission_platform (the system name), number_of_nodes, accelerators_per_node (0),
    benchmark_mode ("tta" | "epoch-time"; an instance of a throughput set trains to the target
    and logs "tta"), submittable (false for --smoke runs)
  then by the trainer, in this order:
    cache_clear (True)
    init_start
      seed, global_batch_size, local_batch_size (per rank), number_of_ranks,
      opt_name ("rmsprop"), opt_base_learning_rate (the peak rate after scaling by ranks),
      opt_learning_rate_warmup_epochs, opt_learning_rate_warmup_steps, opt_learning_rate_warmup_factor,
      with --lr-decay: opt_learning_rate_decay_schedule ("cosine"; metadata: start_samples,
      end_samples, final_factor), opt_learning_rate_decay_start_step, opt_learning_rate_decay_steps,
      opt_end_learning_rate; with --ema-horizon-samples: generator_moving_average_samples
      (the gate judges that moving average; metadata: decay_per_step),
      train_samples,
      eval_samples (held-out showers per evaluation; tta), model_fingerprint (metadata: model),
      precision, quality_thresholds (version; metadata: submittable), resumed (only if resumed),
      emulated_ranks and opt_learning_rate_scaling (only in closed-rule study runs),
      eval_interval_samples (only for tta in evaluation intervals: each epoch below is one interval),
      train_data and (tta) eval_data (the stand-in recipe each set records, or "not a recorded
      stand-in set"; metadata: path, files)
    init_stop
    run_start
      for each epoch e = 1, 2, ...:
        epoch_start {epoch_num: e}, block_start {first_epoch_num: e, epoch_count: 1}
        block_stop {first_epoch_num: e}, epoch_stop {epoch_num: e, seconds, samples_per_second}
        tta, when it evaluates: eval_start {epoch_num}, eval_accuracy = quality objective
          {epoch_num, passed, metrics: every quality metric}, eval_stop {epoch_num}
    run_stop {status: "success" | "aborted", reason when aborted}

The timed result is run_start to run_stop. A run ends once: a second run_stop (a watchdog
racing the normal end) is dropped, and any other line after run_stop is an error.
`read_timing` reads a finished log back as MLPerf's result summarizer does: scores are taken
from the log (harness.scoring), and each epoch's samples from its epoch_stop.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from benchmark import log_keys as keys
from benchmark.vocabulary import LOGGED_MODES
from reference_model.errors import InputError

TOKEN = ":::MLLOG "
_logger_ids = itertools.count()


class MLPerfLogger:
    """The trainer's logger: `start`, `end` and `event` with mllog's meaning; no-ops off rank 0."""

    def __init__(self, path: Path, *, rank: int, benchmark: str, mode: str, smoke: bool,
                 nodes: int, ranks: int, system: Optional[str] = None, identity=None) -> None:
        self.enabled = rank == 0
        self.path = Path(path)
        self.ranks = ranks
        self._stopped = False
        if not self.enabled:
            return
        if mode not in LOGGED_MODES:
            raise ValueError(f"mode {mode!r}: the MLPerf log is for training modes {LOGGED_MODES}")
        if self.path.exists() and self.path.stat().st_size > 0:
            raise InputError(f"{self.path} already holds a run's log; a run never appends to another "
                             "run's file: allocate a new result (harness.results.allocate_training_run)")
        from mlperf_logging.mllog.mllog import MLLogger

        from harness import results
        from harness.sysinfo import identity_from_environment

        identity = identity or identity_from_environment()
        self._handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        log = logging.Logger(f"harness.mllog.{next(_logger_ids)}", level=logging.INFO)
        log.propagate = False
        log.addHandler(self._handler)
        # stack offset 2: the reported file and line are the caller of our methods (the trainer).
        self._mllog = MLLogger(logger=log, default_stack_offset=2)
        platform = system or identity.system_name or results.system_name(None)
        for key, value in (("submission_benchmark", benchmark), ("submission_org", identity.submitter),
                           ("submission_division", identity.division),
                           ("submission_status", identity.status), ("submission_platform", platform),
                           ("number_of_nodes", nodes), ("accelerators_per_node", 0),
                           (keys.BENCHMARK_MODE, mode), (keys.SUBMITTABLE, not smoke)):
            self._mllog.event(key, value)

    # `time_ms` as mllog's: None is now; a stated time is for logs written after the fact (tests).
    def start(self, key: str, value: Any = None, metadata: Optional[dict] = None,
              time_ms: Optional[int] = None) -> None:
        if self._writable(key):
            self._mllog.start(key, value, metadata=metadata, time_ms=time_ms)

    def end(self, key: str, value: Any = None, metadata: Optional[dict] = None,
            time_ms: Optional[int] = None) -> None:
        if self._writable(key):
            self._mllog.end(key, value, metadata=metadata, time_ms=time_ms)
            if key == "run_stop":
                self._stopped = True
                self.close()

    def event(self, key: str, value: Any = None, metadata: Optional[dict] = None,
              time_ms: Optional[int] = None) -> None:
        if self._writable(key):
            self._mllog.event(key, value, metadata=metadata, time_ms=time_ms)

    def close(self) -> None:
        if self.enabled and self._handler is not None:
            self._handler.close()
            self._handler = None

    def _writable(self, key: str) -> bool:
        if not self.enabled:
            return False
        if self._stopped:
            if key == "run_stop":
                return False
            raise RuntimeError(f"{self.path}: '{key}' logged after run_stop; the run has ended")
        return True


def parse_log(path: Path) -> list[dict]:
    """The `:::MLLOG` records of a log, in order, read by mlperf_logging's own parser (so we
    read exactly the lines its checker and result summarizer read; other lines are skipped)."""
    from mlperf_logging.compliance_checker.mlp_parser import parse_file

    from harness.compliance import RULESET

    loglines, _ = parse_file(str(path), ruleset=RULESET)
    return [{"key": line.key, "time_ms": line.timestamp, "value": line.value.get("value"),
             "metadata": line.value.get("metadata") or {}} for line in loglines]


def first_records(records: list[dict]) -> dict[str, dict]:
    """Each key's first record: what a log says of a key it logs once (hyper-parameters, identity)."""
    first: dict[str, dict] = {}
    for record in records:
        first.setdefault(record["key"], record)
    return first


@dataclass
class EpochTiming:
    """One epoch as the log times it: epoch_start to epoch_stop, and the samples it trained."""

    epoch: int
    start_ms: float
    stop_ms: float
    samples: Optional[int]

    @property
    def seconds(self) -> float:
        return (self.stop_ms - self.start_ms) / 1000.0


@dataclass
class LogTiming:
    """What a run's MLPerf log says was measured: the scores are taken from here, not from the
    JSON summary (as MLPerf's result summarizer scores from run_start and run_stop)."""

    run_start_ms: float
    run_stop_ms: float
    status: Optional[str]
    epochs: list[EpochTiming] = field(default_factory=list)
    nodes: Optional[int] = None
    ranks: Optional[int] = None
    seed: Optional[int] = None
    global_batch: Optional[int] = None
    division: Optional[str] = None

    @property
    def seconds(self) -> float:
        return (self.run_stop_ms - self.run_start_ms) / 1000.0

    @property
    def samples_to_converge(self) -> Optional[int]:
        """Samples trained by a run that reached the target (the RCP check's unit): it stops at the
        evaluation that passed, so every sample its epochs trained counts. None when it did not
        reach it, or an epoch_stop does not say what it trained."""
        if self.status != "success" or not self.epochs or any(e.samples is None for e in self.epochs):
            return None
        return sum(e.samples for e in self.epochs)

    @property
    def steady_samples_per_second(self) -> Optional[float]:
        """Samples per second over the epochs after the first (all of them if there is one):
        the trainer's definition, on the log's clock."""
        from benchmark.trainer import steady_epochs

        later = steady_epochs(self.epochs)
        seconds = sum(e.seconds for e in later)
        if not later or seconds <= 0 or any(e.samples is None for e in later):
            return None
        return sum(e.samples for e in later) / seconds


def read_timing(path: Path) -> LogTiming:
    """The timing of a finished run's log; ValueError (MLPerf's message) when run_start or
    run_stop is missing. run_start..run_stop is MLPerf's result summarizer's own query."""
    from mlperf_logging.compliance_checker.mlp_parser import parse_file
    from mlperf_logging.result_summarizer.result_summarizer import _query_run_start_stop

    from harness.compliance import RULESET

    loglines, _ = parse_file(str(path), ruleset=RULESET)
    run_start, run_stop = _query_run_start_stop(loglines)
    records = parse_log(path)
    first = first_records(records)
    starts = {r["metadata"].get("epoch_num"): r["time_ms"] for r in records if r["key"] == "epoch_start"}
    epochs = [EpochTiming(r["metadata"]["epoch_num"], starts[r["metadata"]["epoch_num"]], r["time_ms"],
                          _epoch_samples(r["metadata"]))
              for r in records if r["key"] == "epoch_stop" and r["metadata"].get("epoch_num") in starts]
    stop = first.get("run_stop", {}).get("metadata", {})
    return LogTiming(run_start_ms=run_start, run_stop_ms=run_stop, status=stop.get("status"), epochs=epochs,
                     nodes=first.get("number_of_nodes", {}).get("value"),
                     ranks=first.get(keys.NUMBER_OF_RANKS, {}).get("value"),
                     seed=first.get("seed", {}).get("value"),
                     global_batch=first.get(keys.mlperf.GLOBAL_BATCH_SIZE, {}).get("value"),
                     division=first.get("submission_division", {}).get("value"))


def _epoch_samples(metadata: dict) -> Optional[int]:
    """Samples an epoch trained, from its epoch_stop: MLPerf's `samples_count` when logged,
    else the logged rate times the logged seconds."""
    if isinstance(metadata.get("samples_count"), (int, float)):
        return int(metadata["samples_count"])
    rate, seconds = metadata.get("samples_per_second"), metadata.get("seconds")
    if isinstance(rate, (int, float)) and isinstance(seconds, (int, float)):
        return int(round(rate * seconds))
    return None


def record_abort_if_unfinished(log: Path, reason: str) -> bool:
    """If a run started but its ranks died before run_stop, append run_stop aborted.

    Called by the parent `harness run` after the launcher returns, so a killed run is recorded
    as aborted in its own log instead of looking like it never ended. Returns whether it wrote.
    """
    log = Path(log)
    if not log.is_file():
        return False
    keys = {record.get("key") for record in parse_log(log)}
    if "run_start" not in keys or "run_stop" in keys:
        return False
    from mlperf_logging.mllog.mllog import MLLogger

    handler = logging.FileHandler(log, mode="a", encoding="utf-8")
    writer = logging.Logger(f"harness.mllog.{next(_logger_ids)}", level=logging.INFO)
    writer.propagate = False
    writer.addHandler(handler)
    try:
        MLLogger(logger=writer).end("run_stop", metadata={"status": "aborted", "reason": reason})
    finally:
        handler.close()
    return True
