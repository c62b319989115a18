"""`harness score`: 3DGAN workloads scored the way WLCG sites score CPUs with HEPscore23.

The HEP convention (HEP Benchmark Suite): a workload runs as independent copies that together
fill the server (copies x threads per copy = its logical CPUs, SMT siblings included); its
throughput in one run is the sum over its copies; it runs 3 times and the median counts; its
score is that median over the reference machine's; the server's score is the geometric mean of
its workloads' scores. Per server, never per core. HEPscore23 multiplies the mean by the
reference server's HS06 (1018) to stay continuous with HS06; 3DGAN has no predecessor score to
stay continuous with, so nothing multiplies it and the reference system scores 1.0.

The workloads reuse the suite's own measurements: inference copies are `benchmark.inference`
streams of the shipped generator in each precision (`benchmark.precision`), a lower precision
gated against float32 first exactly as `harness run --mode inference` gates it (a precision
whose showers fail is reported failed and never timed); training copies time the reference
step (`reference_model.training`) in mixed_bfloat16 at batch 8 on a synthetic batch, as
`tests/performance/test_bench_model.py` does. The report keeps the HEP Benchmark Suite's JSON
layout, so a site reads it beside HEPscore23's (rules.md section 12).
"""
from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Sequence

from benchmark.provenance import suite_relative
from benchmark.vocabulary import BFLOAT16, FLOAT32, INFERENCE, INT8, MIXED_BFLOAT16
from reference_model.errors import InputError

BENCHMARK = "3dgan"
SCORE_VERSION = "3dgan-score-v1"  # the workloads' definition; changing one of them makes a new version
DEFAULT_REFERENCE = "vm_amd-epyc-zen-4"  # the 2-vCPU AMD EPYC (Zen 4) VM the suite is developed on
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "results" / "score"
DEFAULT_THREADS_PER_COPY = 1  # most HEPscore23 workloads run single-threaded copies
DEFAULT_REPETITIONS = 3
DEFAULT_DURATION_S = 10.0
WARMUP_ITERATIONS = 3  # untimed batches or steps per copy (tracing, oneDNN primitives, reorders)
MIN_ITERATIONS = 3  # timed batches or steps per copy, however short the duration
QUICK = {"duration_s": 1.0, "repetitions": 1, "warmup": 1}
SEED = 0
HOST_SOFTWARE = ("tensorflow", "keras", "onednn_enabled")  # compared, from the system description
RUNTIME_PACKAGES = ("openvino", "nncf")  # compared too: the int8 runtime, not in the system description
SUCCESS, FAILED = "success", "failed"
TRAINING = "training"


@dataclass(frozen=True)
class Workload:
    """One scored workload: what each copy runs, and the unit its throughput is counted in."""

    name: str
    kind: str  # INFERENCE or TRAINING
    precision: str
    batch: int  # per copy
    unit: str
    description: str


WORKLOADS = {w.name: w for w in (
    Workload("3dgan-inference-float32", INFERENCE, FLOAT32, 128, "showers_per_second",
             "the shipped 3dgan generator, float32 (TensorFlow/oneDNN), latents to showers in GeV"),
    Workload("3dgan-inference-bfloat16", INFERENCE, BFLOAT16, 128, "showers_per_second",
             "the shipped 3dgan generator, mixed_bfloat16 (TensorFlow/oneDNN), gated against float32"),
    Workload("3dgan-inference-int8", INFERENCE, INT8, 128, "showers_per_second",
             "the shipped 3dgan generator, int8 (OpenVINO/NNCF), gated against float32"),
    Workload("3dgan-training-mixed_bfloat16", TRAINING, MIXED_BFLOAT16, 8, "samples_per_second",
             "the reference 3dgan training step (2 discriminator + 2 generator updates), mixed_bfloat16"),
)}


# -- what runs ---------------------------------------------------------------------------------
def parse_workloads(text: Optional[str]) -> list[Workload]:
    """`--workloads a,b` -> those workloads in the given order; None -> all of them."""
    if text is None:
        return list(WORKLOADS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise InputError(f"--workloads {text!r}: unknown {', '.join(unknown) or 'empty list'}; "
                         f"give a comma-separated list of {', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in dict.fromkeys(names)]


def logical_cpus() -> list[int]:
    """The logical CPUs this process may run on (SMT siblings included): the node as seen from
    where the score runs, never a description of another machine."""
    return sorted(os.sched_getaffinity(0))


def fill_node(cpus: int, copies: Optional[int], threads_per_copy: Optional[int]) -> tuple[int, int]:
    """(copies, threads per copy) filling `cpus` logical CPUs: given one, the other fills the
    rest; given neither, single-threaded copies on every logical CPU."""
    if threads_per_copy is not None and threads_per_copy > cpus:
        raise InputError(f"--threads-per-copy {threads_per_copy}: this process may use {cpus} logical "
                         f"CPUs; give at most {cpus}")
    if copies is not None and copies > cpus:
        raise InputError(f"--copies {copies}: each copy needs a logical CPU of its own and this process "
                         f"may use {cpus}; give at most {cpus}")
    if copies is None:
        threads_per_copy = threads_per_copy or DEFAULT_THREADS_PER_COPY
        copies = cpus // threads_per_copy
    elif threads_per_copy is None:
        threads_per_copy = cpus // copies
    elif copies * threads_per_copy > cpus:
        raise InputError(f"--copies {copies} x --threads-per-copy {threads_per_copy} needs "
                         f"{copies * threads_per_copy} logical CPUs but this process may use {cpus}; "
                         "lower one of them")
    return copies, threads_per_copy


@dataclass(frozen=True)
class Settings:
    """How the workloads fill the node and how long they run."""

    copies: int
    threads_per_copy: int
    logical_cpus: int
    repetitions: int
    duration_s: float
    warmup_iterations: int
    quick: bool

    @classmethod
    def resolve(cls, copies: Optional[int], threads_per_copy: Optional[int], repetitions: int,
                duration_s: float, quick: bool, cpus: int) -> "Settings":
        """The flags made concrete; --quick caps the duration and repetitions for tests."""
        copies, threads_per_copy = fill_node(cpus, copies, threads_per_copy)
        if quick:
            duration_s, repetitions = min(duration_s, QUICK["duration_s"]), QUICK["repetitions"]
        return cls(copies, threads_per_copy, cpus, repetitions, duration_s,
                   QUICK["warmup"] if quick else WARMUP_ITERATIONS, quick)

    @property
    def cpus_used(self) -> int:
        return self.copies * self.threads_per_copy


# -- the reference -----------------------------------------------------------------------------
def reference_path(reference: str) -> Path:
    """`--reference SYSTEM` -> the committed results/score/SYSTEM.json; a *.json path as given."""
    if reference.endswith(".json") or os.sep in reference:
        return Path(reference)
    return REFERENCE_DIR / f"{reference}.json"


def committed_references() -> list[str]:
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.json"))


def load_reference(reference: str) -> tuple[dict, Path]:
    """The reference report and where it was read; a missing or malformed one is an InputError
    that names the reports there are and how to make one."""
    path = reference_path(reference)
    if not path.is_file():
        known = ", ".join(committed_references()) or "none yet"
        raise InputError(f"--reference {reference}: no score report at {path} (committed references: "
                         f"{known}); pick one, or make it on that system with `harness score --out {path}`")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"--reference {reference}: {path} is not valid JSON ({err}); restore it") from None
    if not (isinstance(report, dict) and isinstance(report.get("benchmarks"), dict)
            and isinstance(report.get("definition"), dict)):
        raise InputError(f"--reference {reference}: {path} is not a `harness score` report "
                         "(no benchmarks or definition); pass a report this command wrote")
    return report, path


def is_self_reference(out: Path, reference: str) -> bool:
    """A report written to its reference's own file is the reference (it scores 1.0)."""
    return Path(out).resolve() == reference_path(reference).resolve()


# -- the score ---------------------------------------------------------------------------------
def copy_stats(per_copy: Sequence[float]) -> dict:
    """HEP's `wl-stats`: the spread of the copies' throughputs in one run."""
    return {"avg": statistics.fmean(per_copy), "median": statistics.median(per_copy),
            "min": min(per_copy), "max": max(per_copy), "count": len(per_copy)}


def run_throughputs(block: dict) -> list[float]:
    """Each repetition's throughput (run0, run1, ...: the sum over copies), in run order."""
    runs = sorted((k for k in block if k.startswith("run") and k[3:].isdigit()), key=lambda k: int(k[3:]))
    return [next(iter(block[k]["report"]["wl-scores"].values())) for k in runs]


def relative_scores(benchmarks: dict, reference: dict) -> tuple[dict, dict]:
    """Per workload, its median throughput over the reference's, for every workload that
    succeeded both here and in the reference; the others, with why, are excluded."""
    scores, excluded = {}, {}
    for name, block in benchmarks.items():
        theirs = reference.get(name)
        if block.get("status") != SUCCESS:
            excluded[name] = f"failed here: {block.get('reason')}"
        elif theirs is None:
            excluded[name] = "not in the reference report"
        elif theirs.get("status") != SUCCESS or not theirs.get("throughput"):
            excluded[name] = f"failed in the reference report: {theirs.get('reason')}"
        else:
            scores[name] = block["throughput"] / theirs["throughput"]
    return scores, excluded


def geometric_mean(scores: dict) -> Optional[float]:
    return statistics.geometric_mean(scores.values()) if scores else None


def _flatten(mapping: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def definition_differences(ours: dict, theirs: dict) -> list[str]:
    """What makes two reports measure different things: another workload definition, model
    checkpoint, gate thresholds, quick mode or runtime software."""
    a, b = _flatten(ours), _flatten(theirs)
    return [f"{key}: {a.get(key)!r} here, {b.get(key)!r} in the reference" for key in sorted(a.keys() | b.keys())
            if a.get(key) != b.get(key)]


def score_section(benchmarks: dict, definition: dict, system: str, reference: Optional[dict],
                  reference_file: Optional[Path]) -> dict:
    """The report's scoring keys: `reference` (which system, and whether it measured the same
    thing), `wl-scores`, `excluded` (every workload not in the score, and why), `score`,
    `status`; sets each block's `ref_throughput` and `score`. `reference` None: this report (of
    `system`) is its own."""
    theirs = benchmarks if reference is None else reference["benchmarks"]
    scores, excluded = relative_scores(benchmarks, theirs)
    excluded.update({name: "not run (--workloads)" for name in WORKLOADS if name not in benchmarks})
    for name, block in benchmarks.items():
        block["ref_throughput"] = theirs[name]["throughput"] if name in scores else None
        block["score"] = scores.get(name)
    differences = [] if reference is None else definition_differences(definition, reference["definition"])
    failed = any(block["status"] != SUCCESS for block in benchmarks.values())
    reference_system = system if reference is None else reference.get("host", {}).get("system_name", "unknown")
    return {"reference": {"system": reference_system, "self": reference is None,
                          "file": suite_relative(reference_file) if reference_file else None,
                          "sha256": _sha256(reference_file) if reference_file else None,
                          "comparable": not differences, "differences": differences},
            "wl-scores": scores, "excluded": excluded, "score": geometric_mean(scores),
            "status": FAILED if failed else SUCCESS}


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- measuring ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingCopy:
    """One training copy's job, sent to its own spawned process."""

    stream: int
    cores: tuple[int, ...]
    threads: int
    batch: int
    duration_s: float
    warmup: int
    seed: int


def _training_copy_main(job: TrainingCopy, barrier, results) -> None:
    from benchmark.inference import run_timed_copy

    run_timed_copy(job.stream, job.cores, partial(_training_step, job), job.warmup, job.duration_s,
                   MIN_ITERATIONS, barrier, results)


def _training_step(job: TrainingCopy) -> Callable[[], None]:
    """The copy's reference GAN, built after pinning: one call is one synchronous step."""
    import keras

    from benchmark.precision import configure_threads
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN, synthetic_batch

    configure_threads(job.threads, 1)
    keras.mixed_precision.set_global_policy(MIXED_BFLOAT16)
    gan = ReferenceGAN(get_spec(BENCHMARK), seed=job.seed + job.stream)
    batch = synthetic_batch(BENCHMARK, job.batch, seed=job.seed + job.stream)
    return lambda: float(gan.train_step(batch)["d_loss"])  # float(): wait for the step's result


def copy_cores(settings: Settings, cpus: Sequence[int]) -> list[list[int]]:
    """Each copy's own logical CPUs: disjoint, `threads_per_copy` each."""
    from benchmark.inference import stream_core_sets

    return stream_core_sets(settings.copies, list(cpus)[:settings.cpus_used])


def measure(workload: Workload, artifact: Optional[Path], settings: Settings, cpus: Sequence[int]):
    """One repetition: every copy in its own pinned process, started together (a Measurement)."""
    from benchmark.inference import SweepPoint, aggregate, measure_point, run_copies

    if workload.kind == INFERENCE:
        point = SweepPoint(workload.precision, workload.batch, settings.copies, settings.threads_per_copy, 1)
        return measure_point(point, BENCHMARK, artifact, settings.duration_s, settings.warmup_iterations,
                             MIN_ITERATIONS, SEED, list(cpus)[:settings.cpus_used])
    cores = copy_cores(settings, cpus)
    jobs = [TrainingCopy(i, tuple(c), settings.threads_per_copy, workload.batch, settings.duration_s,
                         settings.warmup_iterations, SEED) for i, c in enumerate(cores)]
    collected = run_copies(_training_copy_main, jobs, workload.name, settings.duration_s)
    return aggregate(collected, workload.batch, cores)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _one_line(err: Exception) -> str:
    """A copy's failure as one line: what failed and the exception that ended it."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"


def run_record(measurement, unit: str, started: str, seconds: float) -> dict:
    """One repetition in HEP's layout: its times, and its `report` (throughput summed over
    copies in `wl-scores`, the copies' spread in `wl-stats`)."""
    per_copy = measurement.per_stream_showers_per_second
    return {"start_at": started, "end_at": _now(), "duration": round(seconds, 3),
            "report": {"wl-scores": {unit: sum(per_copy)}, "wl-stats": copy_stats(per_copy),
                       "events": measurement.showers, "window_s": measurement.seconds,
                       "log": f"{len(per_copy)} copies, {measurement.showers} events in the "
                              f"{measurement.seconds:.2f} s timed window"}}


def run_workload(workload: Workload, artifact: Optional[Path], app: dict, failure: str,
                 settings: Settings, cpus: Sequence[int]) -> dict:
    """The workload's block: run0..N-1, `app`, `run_info`, status and median throughput. A
    workload that could not be prepared (`failure`) is reported failed and never timed."""
    run_info = {"copies": settings.copies, "threads_per_copy": settings.threads_per_copy,
                "events_per_thread": None, "batch_per_copy": workload.batch,
                "duration_s": settings.duration_s, "warmup_iterations": settings.warmup_iterations,
                "copy_cpus": copy_cores(settings, cpus)}
    block = {"app": app, "run_info": run_info, "unit": workload.unit, "status": FAILED, "reason": failure,
             "throughput": None}
    if failure:
        print(f"[score] {workload.name}: not run: {failure}", flush=True)
        return block
    runs = {}
    for i in range(settings.repetitions):
        print(f"[score] {workload.name} run {i + 1}/{settings.repetitions}: {settings.copies} copies x "
              f"{settings.threads_per_copy} threads, {settings.duration_s:g} s", flush=True)
        started, start = _now(), time.monotonic()
        try:
            measurement = measure(workload, artifact, settings, cpus)
        except RuntimeError as err:
            block["reason"] = _one_line(err)
            print(f"[score] {workload.name} run {i + 1}: FAILED: {block['reason']}", flush=True)
            return {**runs, **block}
        runs[f"run{i}"] = run_record(measurement, workload.unit, started, time.monotonic() - start)
        report = runs[f"run{i}"]["report"]
        print(f"[score] {workload.name} run {i + 1}/{settings.repetitions}: "
              f"{report['wl-scores'][workload.unit]:,.2f} {workload.unit} (copies "
              f"{report['wl-stats']['min']:,.2f}-{report['wl-stats']['max']:,.2f})", flush=True)
    events = [runs[k]["report"]["events"] for k in runs]
    run_info["events_per_thread"] = int(statistics.median(events)) // settings.cpus_used
    block.update(status=SUCCESS, reason="", throughput=statistics.median(run_throughputs(runs)))
    return {**runs, **block}


# -- preparing: the gate before any timing ------------------------------------------------------
@dataclass
class Prepared:
    """What a workload's copies load (`artifact`), its `app` block, and why it must not run."""

    artifact: Optional[Path]
    app: dict
    failure: str = ""


def prepare_inference(workloads: Sequence[Workload], checkpoint: Path, workdir: Path,
                      thresholds) -> dict[str, Prepared]:
    """Each inference precision's artifact (int8: quantised once into `workdir`), and for every
    precision below float32 the precision gate of `harness run --mode inference`: its showers
    against float32's from the same latents, at the target's noise-floor limits."""
    from benchmark import precision as prec
    from benchmark.quality import noise_floor_thresholds
    from harness.run_inference import precision_gates
    from reference_model.checkpoint import read_card
    from reference_model.specs import get_spec

    spec = get_spec(BENCHMARK)
    sha256 = read_card(checkpoint).get("sha256")
    floor = noise_floor_thresholds(thresholds)
    prepared, runners = {}, {}
    for workload in workloads:
        p = workload.precision
        app = {"description": workload.description, "precision": p, "runtime": prec.RUNTIMES[p],
               "batch_per_copy": workload.batch, "checkpoint": {"path": suite_relative(checkpoint), "sha256": sha256}}
        print(f"[score] {workload.name}: preparing ({prec.RUNTIMES[p]})", flush=True)
        try:
            artifact = prec.prepare(p, checkpoint, workdir, SEED)
            if p != FLOAT32:  # a bf16 runner checks this CPU's bf16 kernels as it loads
                runners[p] = prec.load_runner(p, artifact, spec)
                app["runtime"] = runners[p].runtime
        except InputError as err:
            prepared[workload.name] = Prepared(None, app, f"cannot run on this system: {err}")
            continue
        prepared[workload.name] = Prepared(artifact, app)
    if runners:
        runners[FLOAT32] = prec.load_runner(FLOAT32, checkpoint, spec)
        gates = precision_gates(runners, [p for p in runners if p != FLOAT32], thresholds, SEED,
                                tag="[score] precision gate:")
        for workload in workloads:
            gate = gates.get(workload.precision)
            if gate is None:
                continue
            entry = prepared[workload.name]
            entry.app["precision_gate"] = {"compared_with": gate.compared_with, "thresholds": floor.version,
                                           "passed": gate.passed, "summary": gate.summary}
            if not gate.passed:
                entry.failure = f"precision gate FAILED against float32 ({floor.name}): {gate.summary}"
    return prepared


def prepare_training(workload: Workload) -> Prepared:
    """The training step's app block, after checking this CPU's bfloat16 kernels for it (once
    for the node, as the trainer does on every rank before it trains)."""
    import keras

    from reference_model import numerics
    from reference_model.specs import get_spec

    app = {"description": workload.description, "precision": workload.precision,
           "batch_per_copy": workload.batch, "step": "reference_model.training.ReferenceGAN.train_step",
           "data": "a synthetic batch in the step's contract (reference_model.training.synthetic_batch)"}
    print(f"[score] {workload.name}: checking this CPU's bfloat16 training kernels", flush=True)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(workload.precision)
    try:
        spec = get_spec(BENCHMARK)
        models = [spec.build_generator(), spec.build_discriminator()]
    finally:
        keras.mixed_precision.set_global_policy(previous)
    try:
        checks = numerics.require_correct_kernels(models, workload.batch)
    except InputError as err:
        return Prepared(None, app, f"cannot run on this system: {err}")
    app["kernel_check"] = (f"{len(checks)} bfloat16 layers agree with float32 "
                           f"(worst {max(c.worst for c in checks):.2g}, limit {numerics.RELATIVE_ERROR_LIMIT})")
    return Prepared(None, app)


# -- the whole score ---------------------------------------------------------------------------
def software_versions(host_software: dict) -> dict:
    """The runtimes a throughput depends on: two reports that differ here are flagged."""
    versions = {k: host_software.get(k, "unknown") for k in HOST_SOFTWARE}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def run_score(workloads: Sequence[Workload], settings: Settings, cpus: Sequence[int], host: dict,
              reference_name: str, out: Path, workdir: Path, command: str) -> dict:
    """Gate, run every workload, score against the reference; returns the report (not written).
    A missing reference stops it before anything is prepared or timed."""
    from benchmark import quality
    from benchmark.provenance import suite_commit
    from reference_model.checkpoint import frozen_checkpoint, read_card

    reference = ref_path = None
    if not is_self_reference(out, reference_name):
        reference, ref_path = load_reference(reference_name)
    checkpoint = frozen_checkpoint(BENCHMARK)
    thresholds = quality.load_thresholds(BENCHMARK, smoke=settings.quick)
    definition = {"score_version": SCORE_VERSION, "benchmark": BENCHMARK,
                  "checkpoint_sha256": read_card(checkpoint).get("sha256"),
                  "gate_thresholds": quality.noise_floor_thresholds(thresholds).version, "quick": settings.quick,
                  "software": software_versions(host.get("software", {}))}
    inference = [w for w in workloads if w.kind == INFERENCE]
    prepared = prepare_inference(inference, checkpoint, workdir, thresholds) if inference else {}
    prepared.update({w.name: prepare_training(w) for w in workloads if w.kind == TRAINING})
    for entry in prepared.values():
        entry.app["version"] = SCORE_VERSION
    benchmarks = {w.name: run_workload(w, prepared[w.name].artifact, prepared[w.name].app,
                                       prepared[w.name].failure, settings, cpus) for w in workloads}
    report = {"app_info": {"name": "harness score", "version": SCORE_VERSION, "suite_commit": suite_commit(),
                           "command": command},
              "host": host, "settings": {**asdict(settings), "cpus_used": settings.cpus_used,
                                         "workloads": [w.name for w in workloads]},
              "definition": definition, "benchmarks": benchmarks}
    report.update(score_section(benchmarks, definition, host["system_name"], reference, ref_path))
    return report
