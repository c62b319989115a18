"""Small result trees for the harness tests, written through the real writers.

A training log here follows the sequence documented in harness/mlperf_log.py, so the tests
check our rules against what the trainer is specified to emit.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional, Sequence

from benchmark import vocabulary
from harness import results
from harness.mlperf_log import MLPerfLogger, parse_log
from harness.sysinfo import MLPERF_SYSTEM_FIELDS, STATUSES, Identity

FINGERPRINTS = json.loads((Path(__file__).resolve().parents[2] / "reference_model" / "fingerprints.json").read_text())
SYSTEM = "testsys_cpu"


def thresholds_version(benchmark: str, smoke: bool = False) -> str:
    """The registered version/hash pair a real run of `benchmark` logs."""
    from benchmark.quality import load_thresholds

    return load_thresholds(benchmark, smoke=smoke).version


def freeze_fake_thresholds(monkeypatch) -> SimpleNamespace:
    """The frozen thresholds the fake logs were 'trained' against, as `harness check` judges them:
    the registered version they log, with a limit on the one metric they log."""
    thresholds = SimpleNamespace(version=thresholds_version("3dgan"), limits={"sampling_fraction": 0.05})
    smoke_target = SimpleNamespace(version=thresholds_version("3dgan", smoke=True), limits=thresholds.limits)
    monkeypatch.setattr("harness.checks.frozen_thresholds",
                        lambda benchmark, smoke=False: smoke_target if smoke else thresholds)
    return thresholds


def write_training_log(path: Path, benchmark: str = "3dgan", mode: str = "tta", *, status: str = "success",
                       ranks: int = 2, per_rank_batch: int = 8, division: str = "closed", smoke: bool = False,
                       epochs: int = 2, passed_last: bool = True, learning_rate: float = 1e-3,
                       skip: tuple[str, ...] = (), epoch_seconds: Optional[Sequence[float]] = None,
                       samples_per_epoch: int = 64, seed: int = 0, start_ms: Optional[int] = None,
                       thresholds: Optional[str] = None, eval_interval: Optional[int] = None,
                       extra: Sequence[tuple[str, Any, Optional[dict]]] = (),
                       data: Optional[tuple[str, str]] = None, system: str = SYSTEM) -> None:
    """A complete run log in the documented order, on a made-up clock: `epoch_seconds` (1 s each
    by default) is how long each epoch takes, from `start_ms` (now by default); keys in `skip`
    are left out; `eval_interval` logs a run in evaluation intervals of that many samples;
    `extra` (key, value, metadata) events are logged after the hyper-parameters; `data` is what
    the run trained and was judged on (the benchmark's reference data set by default); `system`
    is the platform it names."""
    from benchmark.recipe import reference_data

    logger = MLPerfLogger(path, rank=0, benchmark=benchmark, mode=mode, smoke=smoke, nodes=1, ranks=ranks,
                          system=system, identity=Identity(submitter="tests", division=division))
    epoch_seconds = list(epoch_seconds or [1.0] * epochs)
    clock = [int(time.time() * 1000) if start_ms is None else start_ms]

    def emit(kind: str, key: str, value=None, metadata=None, after_s: float = 0.0):
        clock[0] += int(round(after_s * 1000))
        if key not in skip:
            getattr(logger, kind)(key, value, metadata=metadata, time_ms=clock[0])

    emit("event", "cache_clear", True)
    emit("start", "init_start")
    for key, value in (("seed", seed), ("global_batch_size", ranks * per_rank_batch),
                       ("local_batch_size", per_rank_batch), ("number_of_ranks", ranks),
                       ("opt_name", "rmsprop"), ("opt_base_learning_rate", learning_rate * ranks),
                       ("opt_learning_rate_warmup_epochs", 5), ("opt_learning_rate_warmup_factor", ranks),
                       ("train_samples", samples_per_epoch)):
        emit("event", key, value)
    train_data, eval_data = data or reference_data(benchmark).recipes
    emit("event", "train_data", train_data, {"path": "data/train", "files": 20})
    if mode == "tta":
        emit("event", "eval_data", eval_data, {"path": "data/heldout", "files": 2})
    for key, value, metadata in extra:
        emit("event", key, value, metadata)
    if eval_interval is not None:
        emit("event", "eval_interval_samples", eval_interval, {"training_set_samples": 10 * eval_interval})
    if mode == "tta":
        emit("event", "eval_samples", 32)
    emit("event", "model_fingerprint", FINGERPRINTS[f"{benchmark}-reference-generator"],
         {"model": f"{benchmark}-reference"})
    emit("event", "precision", "float32")
    emit("event", "quality_thresholds", thresholds or thresholds_version(benchmark, smoke),
         {"submittable": not smoke})
    emit("end", "init_stop", after_s=0.5)
    emit("start", "run_start")
    for epoch, seconds in enumerate(epoch_seconds, start=1):
        emit("start", "epoch_start", metadata={"epoch_num": epoch})
        emit("start", "block_start", metadata={"first_epoch_num": epoch, "epoch_count": 1})
        emit("end", "block_stop", metadata={"first_epoch_num": epoch}, after_s=seconds)
        emit("end", "epoch_stop", metadata={"epoch_num": epoch, "seconds": seconds,
                                            "samples_per_second": samples_per_epoch / seconds})
        if mode == "tta":
            passed = passed_last and epoch == len(epoch_seconds)
            emit("start", "eval_start", metadata={"epoch_num": epoch})
            emit("event", "eval_accuracy", 0.5 if passed else 2.0,
                 {"epoch_num": epoch, "passed": passed, "metrics": {"sampling_fraction": 0.01}})
            emit("end", "eval_stop", metadata={"epoch_num": epoch})
    emit("end", "run_stop", metadata={"status": status})
    logger.close()


def logged_seconds(log: Path) -> float:
    """run_start to run_stop as the log times it (what a real summary's seconds agree with)."""
    times = {r["key"]: r["time_ms"] for r in parse_log(log)}
    return (times["run_stop"] - times["run_start"]) / 1000.0


def make_training_result(root: Path, benchmark: str = "3dgan", mode: str = "tta", *,
                         seconds: Optional[float] = None,
                         samples_per_second: float = 50.0, status: str = "success", ranks: int = 2,
                         nodes: int = 1, per_rank_batch: int = 8, smoke: bool = False,
                         system: str = SYSTEM, instance: Optional[dict] = None, data: Optional[str] = None,
                         **log_options) -> results.TrainingRun:
    """One finished run: reserved, logged, summarised and renamed as the harness does it, its
    summary agreeing with its log. Two epochs of 64 samples, each `seconds / 2` long when
    `seconds` is given (time to accuracy), else `64 / samples_per_second` (epoch time).
    `instance` ({set, index, instances}) makes it an instance of a throughput set; `data` is the
    --data its command line names."""
    log_options.setdefault("passed_last", status == "success")
    samples = 64
    epoch_seconds = [seconds / 2] * 2 if seconds is not None else [samples / samples_per_second] * 2
    run = results.allocate_training_run(root, system, benchmark, mode)
    run.stamp = {"instance": instance} if instance else {}
    write_training_log(run.log, benchmark, results.LOG_MODES[mode], status=status, ranks=ranks,
                       per_rank_batch=per_rank_batch, smoke=smoke, epoch_seconds=epoch_seconds,
                       samples_per_epoch=samples, system=system, **log_options)
    epochs = [{"epoch": i, "seconds": s, "samples": samples} for i, s in enumerate(epoch_seconds, start=1)]
    to_target = mode in (vocabulary.TTA, vocabulary.THROUGHPUT)
    results.write_summary(run.summary, {
        "mode": results.LOG_MODES[mode], "benchmark": benchmark, "status": status, "submittable": not smoke,
        "command": "harness run --worker" + (f" --data {data}" if data else "") + " (test)",
        "seconds": logged_seconds(run.log),
        "samples": samples * len(epochs), "ranks": ranks,
        "nodes": nodes, "ranks_per_node": ranks // nodes, "per_rank_batch": per_rank_batch,
        "global_batch": ranks * per_rank_batch, "precision": "float32", "epochs": epochs,
        "steady_samples_per_second": samples / epoch_seconds[-1],
        "quality": {"passed": status == "success"} if to_target else None})
    results.finish_run(run)
    return run


def write_rcps(directory: Path, samples: Sequence[int] = (128,) * 10, global_batch: int = 16) -> Path:
    """A synthetic 3dgan RCP file in `directory`: reference runs at `global_batch` that converged in
    `samples` (by default what make_training_result's runs train: 2 epochs of 64 at batch 16)."""
    from benchmark.rcp import ReferenceRun, add_reference_runs

    (directory / "3dgan.json").write_text("{}\n")
    runs = [ReferenceRun(global_batch, {"opt_name": "rmsprop"}, seed, s) for seed, s in enumerate(samples, start=1)]
    return add_reference_runs("3dgan", runs, 5, directory)


LOADGEN_SUMMARY = """================================================
MLPerf Results Summary
================================================
SUT name : 3dgan-generator
Scenario : {scenario}
Mode     : PerformanceOnly
Samples per second : {rate}
Result is : {verdict}
  Min duration satisfied : Yes
  Min queries satisfied : Yes
"""
# A latency-bound scenario's summary (SingleStream): its metric line is a percentile latency, and
# its rate comes from the mean latency, as LoadGen 5 writes it.
LOADGEN_LATENCY_SUMMARY = """================================================
MLPerf Results Summary
================================================
SUT name : 3dgan-generator
Scenario : {scenario}
Mode     : PerformanceOnly
90.0th percentile latency (ns) : {p90_ns}
Result is : {verdict}
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Early Stopping Result:
 * Processed at least 64 queries (88054).
 * Would discard 8597 highest latency queries.
 * Early stopping 90.0th percentile estimate: {estimate_ns}
 * Early stopping 99.0th percentile estimate: {estimate_ns}

================================================
Additional Stats
================================================
Mean latency (ns)               : {mean_ns}
90.00 percentile latency (ns)   : {p90_ns}
"""


def make_inference_result(root: Path, benchmark: str = "3dgan", scenario: str = "Offline", *,
                          samples_per_second: float = 100.0, streams: int = 1, precision: str = "float32",
                          valid: bool = True, official_minimum: bool = True, smoke: bool = False,
                          system: str = SYSTEM, p90_ms: float = 1.0,
                          server_latency_ms: Optional[float] = None, server_qps: Optional[float] = None,
                          server_search: Optional[dict] = None) -> Path:
    """One finished LoadGen run with a LoadGen summary log that agrees with its result.json (a
    SingleStream one with `p90_ms` as its early-stopping 90th-percentile estimate; a Server one
    held to `server_latency_ms`, by default the benchmark's fixed bound, run at `server_qps` and
    found by `server_search` when given)."""
    from benchmark.loadgen_runner import SERVER_LATENCY_BOUND_MS

    run = results.allocate_inference_run(root, system, benchmark, scenario)
    verdict = "VALID" if valid else "INVALID"
    if scenario == vocabulary.SINGLE_STREAM:
        summary = LOADGEN_LATENCY_SUMMARY.format(scenario=scenario, verdict=verdict, p90_ns=int(p90_ms * 0.99e6),
                                                 estimate_ns=int(p90_ms * 1e6), mean_ns=1e9 / samples_per_second)
    else:
        summary = LOADGEN_SUMMARY.format(scenario=scenario, rate=samples_per_second, verdict=verdict)
    (run.directory / "mlperf_log_summary.txt").write_text(summary)
    (run.directory / "mlperf_log_detail.txt").write_text("")
    return results.finish_inference_run(run, {
        "status": "success", "submittable": not smoke, "command": "harness run --mode inference (test)",
        "samples_per_second": samples_per_second, "valid": valid, "latency_ns": {"90.00": 1e6},
        "settings": {"intra_op_threads": 1, "inter_op_threads": 1, "streams": streams, "batch_size": 8,
                     "precision": precision},
        "min_duration_ms": 600000 if official_minimum else 1000, "official_minimum": official_minimum,
        **({"loadgen": {"settings": {"server_target_latency_ms":
                                         server_latency_ms or SERVER_LATENCY_BOUND_MS[benchmark],
                                     "server_target_qps": server_qps}},
            "server_search": server_search} if scenario == vocabulary.SERVER else {}),
        "quality": {"passed": True, "checkpoint_target": {"passed": True},
                    "precision_gate": {"passed": True}}})


def write_system(root: Path, system: str = SYSTEM, cores: int = 4, sockets: int = 2, division: str = "closed",
                 frequency_mhz: Optional[dict] = None, software: Optional[dict] = None) -> Path:
    """A system description with every MLPerf field, as `harness sysinfo` writes it, for a fixed
    test machine (the real description of this host is tested in test_sysinfo); `frequency_mhz`
    and `software` are its `cpu.frequency_mhz` and `software` sections, left out when not given."""
    description = {field: "unknown" for field in MLPERF_SYSTEM_FIELDS}
    cpu = {"sockets": sockets, "cores_per_socket": cores, "physical_cores": sockets * cores}
    description.update({
        "submitter": "tests", "division": division, "status": STATUSES["research"], "system_name": system,
        "number_of_nodes": 1, "host_processors_per_node": sockets, "host_processor_model_name": "Test CPU",
        "host_processor_core_count": cores, "host_processor_vcpu_count": cores, "accelerators_per_node": 0,
        "cpu": {**cpu, "frequency_mhz": frequency_mhz} if frequency_mhz else cpu,
        **({"software": software} if software else {})})
    return results.write_json_atomic(results.system_description_path(root, system), description)
