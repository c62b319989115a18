"""The inference throughput sweep: showers per second over threads, streams, batch and precision.

A *stream* is an independent generator instance in its own process (multiprocessing, spawn),
pinned with `os.sched_setaffinity` to its own disjoint set of cores, with its own TensorFlow
(or OpenVINO) intra-op and inter-op thread pools. Processes, not threads, because that is what
measures truthfully: threads in one process share the GIL, one TensorFlow runtime and its global
thread pools, so "streams" would contend for the same pools and the number would describe the
scheduler, not the hardware. Separate pinned processes are what a production service runs.

Per point: every stream loads the model and runs `warmup_batches` batches untimed (graph
tracing, oneDNN primitive creation, weight reorders), then all streams start together at a
barrier and run back-to-back batches until a common deadline. A batch's latency is the time
from conditioned latents in memory to showers in GeV on the host (generator forward plus the
inverse preprocessing). Throughput counts every shower of every stream over the wall-clock
window from the first stream's start to the last stream's end, so a slow stream lowers it.

How each precision's forward is run is decided in `benchmark.precision` (the polyphase rewrite
of `benchmark.inference_graph` on TensorFlow/oneDNN for float32 and bfloat16, OpenVINO + NNCF
for int8); the measurements behind those choices, and what lost, are in
docs/inference-performance.md.
"""
from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import queue
import time
import traceback
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from reference_model.errors import InputError

GEANT4_MS_PER_SHOWER = 17000.0
GEANT4_SOURCE = ("Geant4, 17,000 ms per shower on 2S Intel Xeon Platinum 8180 (CERN openlab / "
                 "Intel 3DGAN slides, 2019; fixed-angle 25x25x25 electron showers)")
SLIDES_3DGAN = ("slides: 3DGAN at batch 128 on 2S Intel Xeon Platinum 8160, TF 1.9: 1.25 ms/shower "
                "(1 stream), 0.93 (2 streams), 0.85 (4 streams), 20,000x Geant4")
SLIDES_CORE_MS_PER_SHOWER = {"1 stream": 1.25 * 48, "4 streams": 0.85 * 48}  # on 2 x 24 cores
LATENT_POOL_BATCHES = 4  # distinct input batches cycled through (inputs differ, cache effects real)
START_TIMEOUT_S = 900.0  # a stream that has not loaded its model by then is reported as failed
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class SweepPoint:
    precision: str
    batch: int
    streams: int
    intra_op: int  # threads per stream
    inter_op: int

    def label(self) -> str:
        return (f"{self.precision} batch {self.batch} streams {self.streams} "
                f"intra-op {self.intra_op} inter-op {self.inter_op}")


@dataclass
class PointResult:
    """One point. `status`: "measured" (the checkpoint meets the target and the precision passed
    the paired comparison with float32), "below-target" (the precision passed the paired
    comparison but the checkpoint itself misses the benchmark's target: timed, not a result),
    "candidate-target" (as "measured", but the target met is not submittable, a release
    candidate: timed, not a result),
    "ungated" (measured without the physics checks: never a result), "FAILED" (the precision's
    showers differ from float32's: not measured) or "error" (a stream process failed; `reason`
    says how)."""

    point: SweepPoint
    status: str
    showers: int = 0
    seconds: float = 0.0
    showers_per_second: Optional[float] = None
    ms_per_shower: Optional[float] = None
    batch_latency_ms: dict = field(default_factory=dict)  # {"p50": .., "p90": .., "p99": ..}
    per_stream_showers_per_second: list = field(default_factory=list)
    stream_cores: list = field(default_factory=list)
    mfu: Optional[float] = None
    executed_utilisation: Optional[float] = None  # FLOPs the rewritten graph executes, over the roofline
    speedup_vs_geant4: Optional[float] = None
    reason: str = ""

    def row(self) -> dict:
        """The flat record written to the sweep JSON/CSV."""
        latency = self.batch_latency_ms
        return {**asdict(self.point), "status": self.status,
                "showers_per_second": self.showers_per_second, "ms_per_shower": self.ms_per_shower,
                "latency_p50_ms": latency.get("p50"), "latency_p90_ms": latency.get("p90"),
                "latency_p99_ms": latency.get("p99"), "mfu": self.mfu,
                "executed_utilisation": self.executed_utilisation,
                "speedup_vs_geant4": self.speedup_vs_geant4, "showers": self.showers,
                "seconds": self.seconds, "per_stream_showers_per_second": self.per_stream_showers_per_second,
                "stream_cores": self.stream_cores, "reason": self.reason}


# -- the grid --------------------------------------------------------------------------------
def available_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def default_streams(cores: int) -> list[int]:
    """1, 2, 4, ... up to the core count (and the core count itself)."""
    streams = [1 << i for i in range(int(math.log2(max(cores, 1))) + 1)]
    return streams if streams[-1] == cores else streams + [cores]


def build_grid(precisions: list[str], batches: list[int], streams: list[int],
               intra_ops: Optional[list[int]], inter_ops: list[int], cores: int) -> list[SweepPoint]:
    """Every combination; intra-op defaults to the cores each stream owns."""
    too_many = [s for s in streams if s > cores]
    if too_many:
        raise InputError(f"--streams {','.join(map(str, too_many))}: each stream needs a core of its "
                         f"own and this process may use {cores}; give at most {cores}")
    return [SweepPoint(p, b, s, intra, inter)
            for p in precisions for b in batches for s in streams
            for intra in (intra_ops or [max(1, cores // s)]) for inter in inter_ops]


def stream_core_sets(streams: int, cores: Optional[list[int]] = None) -> list[list[int]]:
    """Disjoint, equal core sets, one per stream (left-over cores stay idle)."""
    cores = cores or available_cores()
    per_stream = len(cores) // streams
    if per_stream < 1:
        raise InputError(f"{streams} streams but only {len(cores)} cores to pin them to")
    return [cores[i * per_stream:(i + 1) * per_stream] for i in range(streams)]


# -- one stream (runs in its own process) ----------------------------------------------------
@dataclass(frozen=True)
class StreamJob:
    benchmark: str
    precision: str
    artifact: str
    batch: int
    intra_op: int
    inter_op: int
    cores: tuple[int, ...]
    duration_s: float
    warmup_batches: int
    min_batches: int
    seed: int
    stream: int


def _stream_main(job: StreamJob, barrier, results) -> None:
    run_timed_copy(job.stream, job.cores, partial(_load_stream, job), job.warmup_batches, job.duration_s,
                   job.min_batches, barrier, results)


def _load_stream(job: StreamJob) -> Callable[[], None]:
    """The stream's model, loaded after pinning: one call runs one batch, latents to GeV."""
    from benchmark import precision as prec

    runner = load_stream_runner(job.benchmark, job.precision, job.artifact, job.intra_op, job.inter_op)
    spec = runner.spec
    latents = prec.calibration_latents(spec, job.batch * LATENT_POOL_BATCHES, job.seed + job.stream)
    pool = itertools.cycle([latents[i * job.batch:(i + 1) * job.batch] for i in range(LATENT_POOL_BATCHES)])
    return lambda: spec.images_to_gev(runner(next(pool)))


def load_stream_runner(benchmark: str, precision: str, artifact: str, intra_op: int, inter_op: int):
    """A stream process's runner, loaded as every stream loads it (after pinning): the thread
    pools first, before TensorFlow's first op, then the precision's runner over the artifact.
    Shared by the sweep's streams and LoadGen's (`benchmark.loadgen_runner`)."""
    from benchmark import precision as prec
    from reference_model.specs import get_spec

    prec.configure_threads(intra_op, inter_op)
    # the parent (harness.run_inference) checked this node's bf16 kernels when it built its runners
    return prec.load_runner(precision, Path(artifact), get_spec(benchmark), intra_op, check_kernels=False)


def run_timed_copy(stream: int, cores: Sequence[int], load: Callable[[], Callable[[], None]], warmup: int,
                   duration_s: float, min_iterations: int, barrier, results) -> None:
    """One copy's life in its own process: pin it to `cores`, `load()` its work (thread pools are
    set there, after pinning), run the work `warmup` times untimed, wait for the other copies,
    then time back-to-back iterations until the common deadline. The spans, or the error, go to
    `results`; an error breaks the barrier so that no copy waits for one that will never come."""
    try:
        os.sched_setaffinity(0, cores)
        work = load()
        for _ in range(warmup):
            work()
        barrier.wait(timeout=START_TIMEOUT_S)
        deadline = time.perf_counter() + duration_s
        spans = []
        while True:
            start = time.perf_counter()
            work()
            end = time.perf_counter()
            spans.append((start, end))
            if end >= deadline and len(spans) >= min_iterations:
                break
        results.put({"stream": stream, "spans": spans})
    except BaseException:  # report anything, including a broken barrier, to the parent
        barrier.abort()
        results.put({"stream": stream, "error": traceback.format_exc(limit=4)})


# -- one point -------------------------------------------------------------------------------
@dataclass
class Measurement:
    showers: int
    seconds: float
    showers_per_second: float
    batch_latency_ms: dict
    per_stream_showers_per_second: list
    stream_cores: list


def measure_point(point: SweepPoint, benchmark: str, artifact: Path, duration_s: float = 10.0,
                  warmup_batches: int = 3, min_batches: int = 3, seed: int = 0,
                  cores: Optional[list[int]] = None) -> Measurement:
    """Run `point.streams` pinned stream processes together and aggregate their timings."""
    core_sets = stream_core_sets(point.streams, cores)
    jobs = [StreamJob(benchmark, point.precision, str(artifact), point.batch, point.intra_op,
                      point.inter_op, tuple(core_sets[i]), duration_s, warmup_batches, min_batches,
                      seed, i) for i in range(point.streams)]
    collected = run_copies(_stream_main, jobs, point.label(), duration_s)
    return aggregate(collected, point.batch, [list(c) for c in core_sets])


def run_copies(target: Callable, jobs: Sequence, label: str, duration_s: float) -> list[dict]:
    """Run `target(job, barrier, results)` in one spawned process per job, all meeting at one
    barrier, and collect what each puts in `results`; RuntimeError (naming `label`) when a copy
    fails, dies or hangs."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [context.Process(target=target, args=(job, barrier, results), daemon=True) for job in jobs]
    for process in processes:
        process.start()
    collected = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S + duration_s * 4
        while len(collected) < len(jobs):
            try:
                collected.append(results.get(timeout=5.0))
            except queue.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: a stream process died (exit "
                                       f"{[p.exitcode for p in dead]}) or hung")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    errors = [c["error"] for c in collected if "error" in c]
    if errors:
        raise RuntimeError(f"{label}: a stream failed:\n{errors[0]}")
    return collected


def aggregate(collected: list[dict], batch: int, stream_cores: list[list[int]]) -> Measurement:
    """All streams' showers over the window from the first start to the last end."""
    spans = [np.asarray(c["spans"], dtype=np.float64) for c in sorted(collected, key=lambda c: c["stream"])]
    start = min(s[0, 0] for s in spans)
    end = max(s[-1, 1] for s in spans)
    showers = batch * sum(len(s) for s in spans)
    latencies_ms = np.concatenate([(s[:, 1] - s[:, 0]) * 1e3 for s in spans])
    return Measurement(
        showers=showers, seconds=float(end - start), showers_per_second=float(showers / (end - start)),
        batch_latency_ms={f"p{p}": float(np.percentile(latencies_ms, p)) for p in PERCENTILES},
        per_stream_showers_per_second=[float(batch * len(s) / (s[-1, 1] - s[0, 0])) for s in spans],
        stream_cores=stream_cores)


def geant4_speedup(ms_per_shower: float) -> float:
    return GEANT4_MS_PER_SHOWER / ms_per_shower


def point_result(point: SweepPoint, measurement: Measurement, status: str,
                 flops_per_shower: int, roofline_gflops: Optional[float],
                 executed_flops_per_shower: Optional[int] = None) -> PointResult:
    ms = 1e3 / measurement.showers_per_second
    mfu = executed = None
    if roofline_gflops:
        from benchmark.roofline import model_flops_utilisation
        rate = measurement.showers_per_second
        mfu = model_flops_utilisation(flops_per_shower, rate, roofline_gflops)
        executed = model_flops_utilisation(executed_flops_per_shower or flops_per_shower, rate,
                                           roofline_gflops)
    return PointResult(point=point, status=status, showers=measurement.showers,
                       seconds=measurement.seconds, showers_per_second=measurement.showers_per_second,
                       ms_per_shower=ms, batch_latency_ms=measurement.batch_latency_ms,
                       per_stream_showers_per_second=measurement.per_stream_showers_per_second,
                       stream_cores=measurement.stream_cores, mfu=mfu, executed_utilisation=executed,
                       speedup_vs_geant4=geant4_speedup(ms))


# -- the sweep -------------------------------------------------------------------------------
def run_sweep(points: list[SweepPoint], benchmark: str, artifacts: dict[str, Path],
              gate_passed: dict[str, Optional[bool]], flops_per_shower: int,
              rooflines: dict[str, float], duration_s: float = 10.0, warmup_batches: int = 3,
              seed: int = 0, failed_reasons: Optional[dict[str, str]] = None,
              target_passed: Optional[bool] = None,
              executed_flops_per_shower: Optional[int] = None,
              target_submittable: bool = True) -> list[PointResult]:
    """Measure every point whose precision passed the paired gate (None: skipped, "ungated").

    Points of a precision that failed it are returned as FAILED without being run; when the
    checkpoint misses the benchmark's target (`target_passed` False) the rest are "below-target",
    and when the target it meets is not submittable they are "candidate-target".
    """
    from reference_model.progress import Progress

    failed_reasons = failed_reasons or {}
    to_measure = sum(gate_passed.get(p.precision) is not False for p in points)
    progress = Progress(to_measure, "inference sweep", "points", interval=0.0) if to_measure else None
    out = []
    for point in points:
        verdict = gate_passed.get(point.precision)
        if verdict is False:
            out.append(PointResult(point=point, status="FAILED",
                                   reason=failed_reasons.get(point.precision, "failed the quality gate")))
        else:
            print(f"[inference] {point.label()}: measuring {duration_s:g} s", flush=True)
            try:
                measurement = measure_point(point, benchmark, artifacts[point.precision], duration_s,
                                            warmup_batches, seed=seed)
            except RuntimeError as err:  # a stream died: record it, keep the other points
                print(f"[inference] {err}", flush=True)
                out.append(PointResult(point=point, status="error", reason=str(err).splitlines()[0]))
                progress.update()
                continue
            status = ("ungated" if verdict is None else "below-target" if target_passed is False
                      else "measured" if target_submittable else "candidate-target")
            result = point_result(point, measurement, status, flops_per_shower,
                                  rooflines.get(point.precision), executed_flops_per_shower)
            mfu = (f", MFU {result.mfu:.1%} (executed FLOPs {result.executed_utilisation:.1%})"
                   if result.mfu is not None else "")
            print(f"[inference] {point.label()}: {result.showers_per_second:,.1f} showers/s, "
                  f"{result.ms_per_shower:.3f} ms/shower, p99 batch "
                  f"{result.batch_latency_ms['p99']:.1f} ms{mfu}", flush=True)
            out.append(result)
            progress.update()
    return out


TIMED_STATUSES = ("measured", "below-target", "candidate-target", "ungated")
TABLE_COLUMNS = ("precision", "batch", "streams", "intra_op", "inter_op", "status", "showers_per_second",
                 "ms_per_shower", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "mfu",
                 "executed_utilisation", "speedup_vs_geant4")


def sweep_table(results: list[PointResult]) -> str:
    """A readable table; a FAILED precision shows its failing metrics instead of numbers."""
    from tabulate import tabulate

    rows = []
    for result in results:
        row = result.row()
        if result.status in ("FAILED", "error"):
            cells = [row[c] for c in TABLE_COLUMNS[:6]] + [f"not reported: {result.reason}"]
        else:
            cells = [row[c] for c in TABLE_COLUMNS]
            for column in ("mfu", "executed_utilisation"):
                value = row[column]
                cells[TABLE_COLUMNS.index(column)] = "n/a" if value is None else f"{value:.1%}"
            cells[-1] = f"{row['speedup_vs_geant4']:,.0f}x"
        rows.append(cells)
    headers = ("precision", "batch", "streams", "intra", "inter", "status", "showers/s", "ms/shower",
               "p50 ms", "p90 ms", "p99 ms", "MFU", "executed", "vs Geant4")
    return tabulate(rows, headers=headers, floatfmt=".4g")
