"""The distributed training benchmark: time-to-accuracy and epoch time (issue: training).

One loop serves both modes. `tta` evaluates the quality gate on held-out showers every epoch
(or every K samples) and stops at the first evaluation that passes every threshold;
`epoch-time` measures throughput. The loop is written once for any number of ranks: the
`Communicator` decides whether gradients are averaged by Horovod, and only rank 0 logs,
evaluates and checkpoints. A watchdog ends the run within a bounded time if a rank dies or
hangs, and the MLPerf log records it as aborted.
"""
from __future__ import annotations

import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence, TypeVar

from benchmark import log_keys as keys
from benchmark.recipe import DEFAULTS, LINEAR, LearningRateDecay, interval_steps, lr_scale_factor
from benchmark.vocabulary import EPOCH_TIME, MIXED_BFLOAT16, TTA
from reference_model.progress import Progress

SUSPENSION_GAP_S = 10.0  # a watchdog wake-up this late means the process was stopped
PROGRESS_INTERVAL_S = 60.0  # a progress line inside an epoch this often in a log (an angle epoch is 40 min here)
DIVERGED_EMPTY_FRACTION = 0.98  # docs/closed-rule-study.md: a generator this empty has diverged


class RunLogger(Protocol):
    """What the trainer needs from the MLPerf logger (mllog's own method names)."""

    def event(self, key: str, value: Any = None, metadata: Optional[dict] = None) -> None: ...
    def start(self, key: str, value: Any = None, metadata: Optional[dict] = None) -> None: ...
    def end(self, key: str, value: Any = None, metadata: Optional[dict] = None) -> None: ...


@dataclass
class TrainConfig:
    benchmark: str
    mode: str
    data: Path
    checkpoint_dir: Path
    epochs: int = DEFAULTS.max_epochs
    per_rank_batch: int = DEFAULTS.per_rank_batch
    seed: int = 0
    precision: str = DEFAULTS.precision
    base_learning_rate: float = DEFAULTS.base_learning_rate
    warmup_epochs: int = DEFAULTS.warmup_epochs  # epochs of the training set, however epochs are cut
    # Time to accuracy in evaluation intervals of K samples (whole global batches), each drawn from
    # a fresh shuffle of the training set as the reference campaigns train, evaluating after each;
    # `epochs` is then still the budget in passes over the training set. None: evaluate every epoch.
    eval_every_samples: Optional[int] = DEFAULTS.eval_every_samples
    smoke: bool = False
    resume: bool = False
    max_steps_per_epoch: Optional[int] = None  # epoch-time on a slice of the data
    train_fraction: float = DEFAULTS.train_fraction
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    hang_timeout_s: float = 600.0
    export_generator: Optional[Path] = None
    eval_data: Optional[Path] = None  # a separate held-out set; None: the held-out split of `data`
    stop_at_target: bool = True  # False: train every epoch even after the gate passes (campaigns)
    keep_checkpoints: int = 2
    stop_after_s: Optional[float] = None  # wall seconds from train(): then stop as on SIGTERM
    count_suspended_time: bool = True  # False: time while the process was stopped is not training
    lr_decay: Optional[LearningRateDecay] = None  # None: the peak rate after warm-up to the end
    ema_decay: Optional[float] = None  # keep a moving average of the generator (recipe studies)
    judge_moving_average: bool = False  # tta: the gate judges (and --export-generator writes) the average
    emulated_ranks: int = 1  # > 1: the arithmetic of that many ranks in this one process (no timing)
    lr_scaling: str = LINEAR  # how the peak rate grows with the ranks (the closed division's: linear)
    warmup_samples: Optional[int] = None  # the warm-up in samples; None: `warmup_epochs` epochs

    def __post_init__(self) -> None:
        if self.judge_moving_average and self.ema_decay is None:
            raise ValueError("judge_moving_average needs ema_decay: there is no moving average to judge")

    def warmup_steps(self, global_batch: int, data_epoch_steps: int) -> int:
        """Steps of the linear warm-up: `warmup_samples` (rounded up to whole steps) if set, else
        `warmup_epochs` passes over the training set (`data_epoch_steps` each, uncut)."""
        if self.warmup_samples is not None:
            return -(-self.warmup_samples // global_batch)
        return self.warmup_epochs * data_epoch_steps

    def schedule(self, global_batch: int, data_epoch_steps: int) -> tuple[int, int]:
        """(steps per trainer epoch, epochs): an epoch cut at `max_steps_per_epoch`, or for time to
        accuracy with `eval_every_samples` one evaluation interval, as many as the budget of
        `epochs` passes takes."""
        steps = min(data_epoch_steps, self.max_steps_per_epoch or data_epoch_steps)
        if self.mode != TTA or self.eval_every_samples is None:
            return steps, self.epochs
        interval = min(steps, interval_steps(self.eval_every_samples, global_batch))
        return interval, -(-self.epochs * steps // interval)


@dataclass
class EpochRecord:
    epoch: int
    seconds: float
    samples: int
    input_wait_seconds: float = 0.0  # of `seconds`, the time the step waited for its next batch
    evaluated: bool = False
    passed: bool = False
    objective: Optional[float] = None


Epoch = TypeVar("Epoch")


def steady_epochs(epochs: Sequence[Epoch]) -> Sequence[Epoch]:
    """The epochs a throughput is measured over: those after the first, which pays for graph
    tracing (the only one, when there is one). The trainer's samples/s and the scaling series'
    epoch time both take their epochs from here, so they describe the same ones."""
    return epochs[1:] if len(epochs) > 1 else epochs


@dataclass
class TrainResult:
    status: str  # "success" | "aborted"
    mode: str
    benchmark: str
    ranks: int
    per_rank_batch: int
    global_batch: int
    precision: str
    seconds: float  # run_start to run_stop (time to accuracy in tta mode)
    samples: int
    epochs: list[EpochRecord] = field(default_factory=list)
    quality: Optional[dict] = None
    resumed_from_epoch: Optional[int] = None
    reason: str = ""
    emulated_ranks: int = 1  # > 1: `ranks` were emulated in one process; `seconds` is no timing

    @property
    def steady_samples_per_second(self) -> Optional[float]:
        """Samples per second over the steady epochs (`steady_epochs`)."""
        later = steady_epochs(self.epochs)
        seconds = sum(e.seconds for e in later)
        return sum(e.samples for e in later) / seconds if seconds > 0 else None

    @property
    def steady_input_wait_fraction(self) -> Optional[float]:
        """Share of the steady epochs' time spent waiting for input (high: pipeline-bound)."""
        later = steady_epochs(self.epochs)
        seconds = sum(e.seconds for e in later)
        return sum(e.input_wait_seconds for e in later) / seconds if seconds > 0 else None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["steady_samples_per_second"] = self.steady_samples_per_second
        out["steady_input_wait_fraction"] = self.steady_input_wait_fraction
        if self.epochs:
            out["first_epoch_seconds"] = self.epochs[0].seconds
        return out


class Watchdog:
    """Bounds how long a broken run can take, from a thread of its own.

    SIGTERM (the launcher ending the job, Slurm's time limit) sets `terminate`: the training
    loop checkpoints at the next step and stops. If the loop cannot get there within the
    grace (blocked in a collective whose peer died), or if no step completes for `timeout_s`,
    the watchdog records the abort through `on_abort` and ends the process. The grace is
    `grace_s` or twice the longest gap between beats so far, whichever is longer, so a run
    whose steps or evaluations are slow (a large model, a loaded or slow node) still stops
    cleanly; `timeout_s` bounds a stop as it bounds a step, and before the first beat only it applies.
    The signal is seen through a wakeup fd, so this works while the main thread is blocked.
    A process stopped and continued (SIGSTOP/SIGCONT, Slurm's suspend) is not hung: the
    watchdog wakes every second, so a longer gap is counted as suspension, not as silence.
    """

    def __init__(self, timeout_s: float, on_abort, grace_s: float = 30.0) -> None:
        self.timeout_s, self.grace_s, self.on_abort = timeout_s, grace_s, on_abort
        self.last_beat = time.monotonic()
        self.longest_gap_s: Optional[float] = None  # between beats; None until the first one
        self.suspended_s = 0.0  # time the whole process spent stopped (SIGSTOP ... SIGCONT)
        self.terminate = threading.Event()
        self._stop = threading.Event()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def __enter__(self) -> "Watchdog":
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: None)  # the C handler still wakes the fd
            signal.set_wakeup_fd(self._write_fd)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def beat(self) -> None:
        now = time.monotonic()
        self.longest_gap_s = max(self.longest_gap_s or 0.0, now - self.last_beat)
        self.last_beat = now

    def grace(self) -> Optional[float]:
        """How long a stop may take after SIGTERM (None: no step has finished yet)."""
        return None if self.longest_gap_s is None else max(self.grace_s, 2.0 * self.longest_gap_s)

    def _watch(self) -> None:
        import select

        terminated_at = None
        last_wake = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._read_fd], [], [], 1.0)
            if self._stop.is_set():
                return
            now = time.monotonic()
            if now - last_wake > SUSPENSION_GAP_S:  # the process was stopped (SIGSTOP), not hung
                self.suspended_s += now - last_wake
                self.last_beat += now - last_wake
            last_wake = now
            if ready:
                os.read(self._read_fd, 64)
                terminated_at = terminated_at or now
                self.terminate.set()
            grace = self.grace()
            if terminated_at is not None and grace is not None and now - terminated_at > grace:
                self._fire("received SIGTERM and could not stop cleanly (a rank died or hung)")
            elif now - self.last_beat > self.timeout_s:
                self._fire(f"no training progress for {self.timeout_s:.0f} s (a rank died or hung)")

    def _fire(self, reason: str) -> None:
        try:
            self.on_abort(reason)
        finally:
            print(f"harness run: aborted on {socket.gethostname()}: {reason}", file=sys.stderr, flush=True)
            os._exit(3)


def configure_tensorflow(config: TrainConfig) -> None:
    """Threads and precision must be set before TensorFlow builds anything."""
    import keras

    from benchmark.precision import configure_threads

    configure_threads(config.intra_op_threads, config.inter_op_threads)
    keras.mixed_precision.set_global_policy(config.precision)


# (epoch, samples trained so far, seconds since run start, QualityReport, ReferenceGAN) -> None to
# go on, or the reason to stop the run after this evaluation's checkpoint
EvaluationHook = Callable[[int, int, float, Any, Any], Optional[str]]


def train(config: TrainConfig, comm, logger: RunLogger,
          on_evaluation: Optional[EvaluationHook] = None) -> TrainResult:
    """Run one training benchmark on this rank; rank 0's result is the run's result.

    `on_evaluation(epoch, samples, seconds, report, gan)` is called on rank 0 after every quality
    evaluation; when it returns a reason, every rank stops after that evaluation's checkpoint.
    """
    import numpy as np
    import tensorflow as tf

    from benchmark import quality
    from benchmark.distributed import warmup_learning_rate
    from reference_model import data, numerics, pipeline
    from reference_model.fingerprint import architecture_fingerprint
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    spec = get_spec(config.benchmark)
    deadline = None if config.stop_after_s is None else time.monotonic() + config.stop_after_s
    configure_tensorflow(config)
    logger.event(keys.mlperf.CACHE_CLEAR, True)
    logger.start(keys.mlperf.INIT_START)
    files = data.list_files(config.data)
    if config.eval_data is not None:
        train_files, eval_files = files, data.list_files(config.eval_data)
    else:
        train_files, eval_files = data.split_files(files, config.train_fraction)
    thresholds = quality.load_thresholds(config.benchmark, smoke=config.smoke)
    reference = None
    if config.mode == TTA and comm.is_root:  # only the showers the gate compares stay in memory
        reference = quality.load_evaluation_showers(eval_files, thresholds)

    if config.emulated_ranks > 1 and comm.size > 1:
        from reference_model.errors import InputError
        raise InputError(f"--emulate-ranks {config.emulated_ranks}: emulation runs every rank in one "
                         f"process, but {comm.size} were launched; run it with 1 rank")
    gan = ReferenceGAN(spec, seed=config.seed, learning_rate=config.base_learning_rate,
                       tape_wrapper=comm.tape_wrapper, rank=comm.rank, ema_decay=config.ema_decay,
                       emulated_ranks=config.emulated_ranks)
    if config.precision == MIXED_BFLOAT16:  # on every rank: each node's kernels are its own
        checks = numerics.require_correct_kernels([gan.generator, gan.discriminator], config.per_rank_batch)
        if comm.is_root:
            print(f"[rank 0] {len(checks)} bfloat16 layers agree with float32 on this CPU "
                  f"(worst {max(c.worst for c in checks):.2g}, limit {numerics.RELATIVE_ERROR_LIMIT})",
                  flush=True)
    state = gan.checkpoint(epoch=tf.Variable(0, dtype=tf.int64),
                           elapsed=tf.Variable(0.0, dtype=tf.float64),
                           samples=tf.Variable(0, dtype=tf.int64),
                           epoch_step=tf.Variable(0, dtype=tf.int64))
    manager = tf.train.CheckpointManager(state, str(config.checkpoint_dir),
                                         max_to_keep=config.keep_checkpoints)
    resumed_from = None
    if config.resume:
        if manager.latest_checkpoint is None:
            from reference_model.errors import InputError
            raise InputError(f"--resume: no checkpoint in {config.checkpoint_dir}; "
                             "start without --resume or point --results at the killed run's root")
        try:
            state.restore(manager.latest_checkpoint).expect_partial()
        except Exception as err:  # TensorFlow raises many types for a damaged checkpoint
            from reference_model.errors import InputError
            raise InputError(f"{manager.latest_checkpoint}: cannot restore the training state "
                             f"({type(err).__name__}); it is damaged or from another model: restore it "
                             "or start without --resume") from None
        resumed_from = int(state.epoch.numpy())
        if comm.size > 1:  # every rank restored rank 0's random streams
            gan.rekey(comm.rank, int(state.samples.numpy()))
    comm.broadcast_variables(gan.variables)

    ranks = comm.size * config.emulated_ranks  # the ranks whose arithmetic this run does
    global_batch = config.per_rank_batch * ranks
    data_epoch_steps = pipeline.steps_per_epoch(train_files, config.per_rank_batch, ranks)
    steps_per_epoch, epochs = config.schedule(global_batch, data_epoch_steps)
    if steps_per_epoch < 1:
        from reference_model.errors import InputError
        raise InputError(f"{config.data}: too few training events for {ranks} ranks x batch "
                         f"{config.per_rank_batch}; make more data (harness data synth) or lower --batch")
    schedule = warmup_learning_rate(config.base_learning_rate, ranks,
                                    config.warmup_steps(global_batch, data_epoch_steps), config.lr_scaling)

    _log_hyperparameters(logger, config, spec, ranks, global_batch, data_epoch_steps, steps_per_epoch, thresholds,
                         architecture_fingerprint(gan.generator), resumed_from)
    _log_data(logger, config, train_files, eval_files)
    logger.end(keys.mlperf.INIT_STOP)

    result = TrainResult(status="aborted", mode=config.mode, benchmark=config.benchmark,
                         ranks=ranks, per_rank_batch=config.per_rank_batch, emulated_ranks=config.emulated_ranks,
                         global_batch=global_batch, precision=config.precision, seconds=0.0,
                         samples=int(state.samples.numpy()), resumed_from_epoch=resumed_from)

    def abort(reason: str) -> None:
        result.reason = reason
        logger.end(keys.mlperf.RUN_STOP, metadata={keys.mlperf.STATUS: keys.mlperf.ABORTED, "reason": reason})

    comm.barrier()
    logger.start(keys.mlperf.RUN_START)
    run_start = time.monotonic() - float(state.elapsed.numpy())
    resume_step = int(state.epoch_step.numpy())  # steps already trained in the resumed epoch
    step = int(state.epoch.numpy()) * steps_per_epoch + resume_step
    with Watchdog(config.hang_timeout_s, abort) as watchdog, pipeline.input_errors_surfaced():
        def elapsed() -> float:
            suspended = 0.0 if config.count_suspended_time else watchdog.suspended_s
            return time.monotonic() - run_start - suspended

        for epoch in range(int(state.epoch.numpy()), epochs):
            skip, resume_step = resume_step, 0
            dataset = _epoch_dataset(train_files, spec, config, comm, epoch, steps_per_epoch)
            batches = iter(dataset.skip(skip).take(steps_per_epoch - skip))
            batch = next(batches, None)  # the shuffle buffer fills here, before the epoch clock starts
            logger.start(keys.mlperf.EPOCH_START, metadata={keys.mlperf.EPOCH_NUM: epoch + 1})
            logger.start(keys.mlperf.BLOCK_START, metadata={keys.mlperf.FIRST_EPOCH_NUM: epoch + 1,
                                                            keys.mlperf.EPOCH_COUNT: 1})
            epoch_start = time.monotonic()
            done, input_wait = 0, 0.0
            meter = (Progress((steps_per_epoch - skip) * global_batch, f"[rank 0] epoch {epoch + 1}", unit="samples",
                              interval=PROGRESS_INTERVAL_S) if comm.is_root else None)
            while batch is not None:
                if deadline is not None and time.monotonic() > deadline:
                    watchdog.terminate.set()
                if watchdog.terminate.is_set():
                    break
                decay = config.lr_decay.factor(step * global_batch) if config.lr_decay else 1.0
                gan.set_learning_rate(schedule(step) * decay)
                losses = gan.train_step(batch)  # synchronous: returns when the step is done
                step += 1
                done += 1
                watchdog.beat()
                if meter is not None:
                    meter.update(global_batch)
                waited_from = time.monotonic()
                batch = next(batches, None)
                input_wait += time.monotonic() - waited_from
            del batches
            if watchdog.terminate.is_set():  # resume continues this epoch after its trained steps
                state.samples.assign_add(done * global_batch)
                state.epoch_step.assign(skip + done)
                state.elapsed.assign(elapsed())
                if comm.is_root:
                    manager.save()
                cause = "time limit" if deadline is not None and time.monotonic() > deadline else "SIGTERM"
                result.reason = (f"{cause} during epoch {epoch + 1} after step {skip + done}; "
                                 "checkpoint saved, continue with --resume")
                break
            losses = {k: float(v) for k, v in losses.items()}  # waits for the last step
            seconds = time.monotonic() - epoch_start
            epoch_samples = done * global_batch
            non_finite = sorted(k for k, v in losses.items() if not math.isfinite(v))
            if comm.allreduce_mean(np.array([float(bool(non_finite))]))[0] > 0:  # every rank stops together
                samples = int(state.samples.numpy()) + epoch_samples
                result.reason = (f"diverged: non-finite {', '.join(non_finite) or 'losses on another rank'} in "
                                 f"epoch {epoch + 1} at {samples:,} samples (learning rate "
                                 f"{schedule(step - 1) * decay:.4g}); not converged, no checkpoint of it kept")
                print(f"[rank {comm.rank}] {result.reason}", file=sys.stderr, flush=True)
                break
            state.samples.assign_add(epoch_samples)
            state.epoch_step.assign(0)
            record = EpochRecord(epoch=epoch + 1, seconds=seconds, samples=epoch_samples,
                                 input_wait_seconds=input_wait)
            result.epochs.append(record)
            logger.end(keys.mlperf.BLOCK_STOP, metadata={keys.mlperf.FIRST_EPOCH_NUM: epoch + 1})
            logger.end(keys.mlperf.EPOCH_STOP, metadata={keys.mlperf.EPOCH_NUM: epoch + 1,
                                                         keys.mlperf.SAMPLES_COUNT: epoch_samples,
                                                         "seconds": seconds,
                                                         "samples_per_second": epoch_samples / seconds,
                                                         "input_wait_seconds": input_wait, **losses})
            if config.mode == TTA:
                state.elapsed.assign(elapsed())
                passed, stop_reason = _evaluate(gan, spec, reference, thresholds, config, comm, logger,
                                                epoch + 1, record, result, int(state.samples.numpy()),
                                                float(state.elapsed.numpy()), on_evaluation)
                watchdog.beat()
            else:
                passed, stop_reason = False, None
            state.epoch.assign(epoch + 1)
            state.elapsed.assign(elapsed())
            if comm.is_root:
                manager.save()
            if passed:
                result.status = "success"
                if config.stop_at_target:
                    break
            if stop_reason is not None:
                result.reason = stop_reason
                break
        result.seconds = elapsed()
        result.samples = int(state.samples.numpy())
        if config.mode == EPOCH_TIME and not watchdog.terminate.is_set():
            result.status = "success"
        if result.status == "aborted" and not result.reason:
            result.reason = f"quality target not reached in {config.epochs} epochs" + (
                f" ({epochs} evaluation intervals)" if epochs != config.epochs else "")
        reason = {"reason": result.reason} if result.reason else {}
        logger.end(keys.mlperf.RUN_STOP, metadata={keys.mlperf.STATUS: result.status, **reason})
    if comm.is_root and config.export_generator is not None:
        from reference_model.checkpoint import save_generator
        save_generator(config.export_generator, _judged_generator(gan, config), spec,
                       {"epochs": len(result.epochs), "samples": result.samples, "seed": config.seed,
                        "status": result.status, "quality": result.quality})
    return result


def _epoch_dataset(train_files, spec, config: TrainConfig, comm, epoch: int, steps: int):
    """This rank's shard of the epoch, or with emulated ranks every rank's shard, zipped: each
    step then takes one per-rank batch of each (what rank r of that many would read). An epoch
    cut at `steps` shuffles in a buffer no larger than what it takes."""
    import tensorflow as tf

    from reference_model import pipeline

    buffer = pipeline.shuffle_buffer_events(spec.geometry, config.per_rank_batch, steps)
    if config.emulated_ranks == 1:
        return pipeline.make_dataset(train_files, spec, config.per_rank_batch, rank=comm.rank,
                                     num_ranks=comm.size, seed=config.seed + epoch, shuffle_buffer=buffer)
    return tf.data.Dataset.zip(tuple(
        pipeline.make_dataset(train_files, spec, config.per_rank_batch, rank=rank,
                              num_ranks=config.emulated_ranks, seed=config.seed + epoch, shuffle_buffer=buffer)
        for rank in range(config.emulated_ranks)))


def _judged_generator(gan, config: TrainConfig):
    """The generator the quality gate judges: the moving average of its weights where the recipe
    judges that, else the generator itself."""
    return gan.ema_generator() if config.judge_moving_average else gan.generator


def _evaluate(gan, spec, reference, thresholds, config, comm, logger, epoch: int,
              record: EpochRecord, result: TrainResult, samples: int, seconds: float,
              on_evaluation: Optional[EvaluationHook]) -> tuple[bool, Optional[str]]:
    """Rank 0 evaluates the quality gate; every rank learns whether it passed, and whether rank 0's
    hook asked to stop (with its reason on rank 0)."""
    from functools import partial

    import numpy as np

    from benchmark import quality

    logger.start(keys.mlperf.EVAL_START, metadata={keys.mlperf.EPOCH_NUM: epoch})
    passed, stop_reason = 0.0, None
    if comm.is_root:
        report = quality.evaluate_generator(partial(_judged_generator(gan, config), training=False), spec,
                                            reference, thresholds, seed=config.seed)
        summary = report.to_dict()
        result.quality = summary
        record.evaluated, record.passed, record.objective = True, bool(report.passed), float(report.objective)
        logger.event(keys.mlperf.EVAL_ACCURACY, float(report.objective),
                     metadata={keys.mlperf.EPOCH_NUM: epoch, "passed": bool(report.passed),
                               "metrics": summary.get("metrics")})
        print(f"[rank 0] epoch {epoch}: quality objective {report.objective:.4f}, "
              f"{'PASS' if report.passed else 'not yet'} ({report.failed_summary()})", flush=True)
        passed = 1.0 if report.passed else 0.0
        if on_evaluation is not None:
            stop_reason = on_evaluation(epoch, samples, seconds, report, gan)
        empty = report.value(quality.EMPTY_FRACTION)
        if empty >= DIVERGED_EMPTY_FRACTION:
            stop_reason = (f"diverged: {empty:.1%} of the generated showers are empty at {samples:,} samples "
                           f"(at least {DIVERGED_EMPTY_FRACTION:.0%} is a collapsed generator); not converged")
            print(f"[rank 0] {stop_reason}", file=sys.stderr, flush=True)
    logger.end(keys.mlperf.EVAL_STOP, metadata={keys.mlperf.EPOCH_NUM: epoch})
    passed_votes, stop_votes = comm.allreduce_mean(np.array([passed, float(stop_reason is not None)])) * comm.size
    if stop_votes >= 0.5 and stop_reason is None:
        stop_reason = "stopped by rank 0 after its evaluation"
    return bool(passed_votes >= 0.5), stop_reason


NOT_A_STANDIN = "not a recorded stand-in set"


def _log_data(logger: RunLogger, config: TrainConfig, train_files: list, eval_files: list) -> None:
    """Which data the run trains on and (tta) is judged on: a stand-in set by the recipe it
    records (`simulator.recorded_recipe`), anything else as such; closed compliance compares them
    with the benchmark's reference data set."""
    from reference_model.simulator import recorded_recipe

    made = recorded_recipe(config.data) or NOT_A_STANDIN
    logger.event(keys.TRAIN_DATA, made, metadata={"path": str(config.data), "files": len(train_files)})
    if config.mode != TTA:
        return
    if config.eval_data is not None:
        judged = recorded_recipe(config.eval_data) or NOT_A_STANDIN
        where = str(config.eval_data)
    else:
        judged, where = f"the held-out split ({1.0 - config.train_fraction:g}) of {made}", str(config.data)
    logger.event(keys.EVAL_DATA, judged, metadata={"path": where, "files": len(eval_files)})


def _log_hyperparameters(logger: RunLogger, config: TrainConfig, spec, ranks: int, global_batch: int,
                         data_epoch_steps: int, steps_per_epoch: int, thresholds, fingerprint: str,
                         resumed_from: Optional[int]) -> None:
    logger.event(keys.mlperf.SEED, config.seed)
    logger.event(keys.mlperf.GLOBAL_BATCH_SIZE, global_batch)
    logger.event(keys.LOCAL_BATCH_SIZE, config.per_rank_batch)
    logger.event(keys.NUMBER_OF_RANKS, ranks)
    if config.emulated_ranks > 1:
        logger.event(keys.EMULATED_RANKS, config.emulated_ranks,
                     metadata={"note": "all ranks in one process: convergence evidence, not a timing"})
    logger.event(keys.mlperf.OPT_NAME, "rmsprop")
    factor = lr_scale_factor(ranks, config.lr_scaling)
    logger.event(keys.mlperf.OPT_BASE_LR, config.base_learning_rate * factor)
    warmup_steps = config.warmup_steps(global_batch, data_epoch_steps)
    logger.event(keys.mlperf.OPT_LR_WARMUP_EPOCHS, config.warmup_epochs if config.warmup_samples is None
                 else warmup_steps / data_epoch_steps)
    logger.event(keys.mlperf.OPT_LR_WARMUP_STEPS, warmup_steps)
    logger.event(keys.mlperf.OPT_LR_WARMUP_FACTOR, factor)
    if config.lr_scaling != LINEAR:
        logger.event(keys.LR_SCALING, config.lr_scaling, metadata={
            "note": "a closed-rule study candidate (docs/closed-rule-study.md), not the closed rule"})
    if config.lr_decay is not None:
        decay, peak = config.lr_decay, config.base_learning_rate * factor
        logger.event(keys.mlperf.OPT_LR_DECAY_SCHEDULE, "cosine", metadata={
            "start_samples": decay.start_samples, "end_samples": decay.end_samples,
            "final_factor": decay.final_factor})
        logger.event(keys.mlperf.OPT_LR_DECAY_START_STEP, decay.start_samples // global_batch)
        logger.event(keys.mlperf.OPT_LR_DECAY_STEPS, -(-(decay.end_samples - decay.start_samples) // global_batch))
        logger.event(keys.mlperf.OPT_END_LR, peak * decay.final_factor)
    if config.judge_moving_average:
        logger.event(keys.MOVING_AVERAGE, round(global_batch / (1.0 - config.ema_decay)), metadata={
            "decay_per_step": config.ema_decay,
            "note": "the quality gate judges the moving average of the generator's weights"})
    logger.event(keys.mlperf.TRAIN_SAMPLES, steps_per_epoch * global_batch)
    if config.mode == TTA and config.eval_every_samples is not None:
        logger.event(keys.EVAL_INTERVAL, steps_per_epoch * global_batch, metadata={
            "training_set_samples": data_epoch_steps * global_batch,
            "note": "each epoch of this log is one evaluation interval drawn from a fresh shuffle of the "
                    "training set, as the reference convergence runs train"})
    logger.event(keys.MODEL_FINGERPRINT, fingerprint, metadata={"model": spec.name})
    logger.event(keys.PRECISION, config.precision)
    if config.mode == TTA:
        logger.event(keys.mlperf.EVAL_SAMPLES,
                     thresholds.events_per_bin * len(thresholds.energy_bins_gev))
    logger.event(keys.QUALITY_THRESHOLDS, thresholds.version, metadata={keys.SUBMITTABLE: not config.smoke})
    if resumed_from is not None:
        logger.event(keys.RESUMED, True, metadata={"from_epoch": resumed_from})
