"""Small result trees for the harness tests, written through the real writers.

A training log here follows the sequence documented in harness/mlperf_log.py, so the tests
check our rules against what the trainer is specified to emit.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from harness import results
from harness.mlperf_log import MLPerfLogger, parse_log
from harness.sysinfo import MLPERF_SYSTEM_FIELDS, STATUSES, Identity

FINGERPRINTS = json.loads((Path(__file__).resolve().parents[2] / "reference_model" / "fingerprints.json").read_text())
SYSTEM = "testsys_cpu"


def write_training_log(path: Path, benchmark: str = "3dgan", mode: str = "tta", *, status: str = "success",
                       ranks: int = 2, per_rank_batch: int = 8, division: str = "closed", smoke: bool = False,
                       epochs: int = 2, passed_last: bool = True, learning_rate: float = 1e-3,
                       skip: tuple[str, ...] = ()) -> None:
    """A complete run log in the documented order; keys in `skip` are left out."""
    logger = MLPerfLogger(path, rank=0, benchmark=benchmark, mode=mode, smoke=smoke, nodes=1, ranks=ranks,
                          system=SYSTEM, identity=Identity(submitter="tests", division=division))

    def emit(kind: str, key: str, value=None, metadata=None):
        if key not in skip:
            getattr(logger, kind)(key, value, metadata=metadata)

    emit("event", "cache_clear", True)
    emit("start", "init_start")
    for key, value in (("seed", 0), ("global_batch_size", ranks * per_rank_batch),
                       ("local_batch_size", per_rank_batch), ("number_of_ranks", ranks),
                       ("opt_name", "rmsprop"), ("opt_base_learning_rate", learning_rate * ranks),
                       ("opt_learning_rate_warmup_epochs", 5), ("opt_learning_rate_warmup_factor", ranks),
                       ("train_samples", 64)):
        emit("event", key, value)
    if mode == "tta":
        emit("event", "eval_samples", 32)
    emit("event", "model_fingerprint", FINGERPRINTS[f"{benchmark}-reference-generator"],
         {"model": f"{benchmark}-reference"})
    emit("event", "precision", "float32")
    emit("event", "quality_thresholds", "smoke" if smoke else "v1", {"submittable": not smoke})
    emit("end", "init_stop")
    emit("start", "run_start")
    for epoch in range(1, epochs + 1):
        emit("start", "epoch_start", metadata={"epoch_num": epoch})
        emit("start", "block_start", metadata={"first_epoch_num": epoch, "epoch_count": 1})
        emit("end", "block_stop", metadata={"first_epoch_num": epoch})
        emit("end", "epoch_stop", metadata={"epoch_num": epoch, "seconds": 1.0})
        if mode == "tta":
            passed = passed_last and epoch == epochs
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
                         system: str = SYSTEM, **log_options) -> results.TrainingRun:
    """One finished run: reserved, logged, summarised and renamed as the harness does it.
    `seconds` defaults to what the log times; pass it to score made-up durations."""
    log_options.setdefault("passed_last", status == "success")
    run = results.allocate_training_run(root, system, benchmark, mode)
    write_training_log(run.log, benchmark, mode, status=status, ranks=ranks, per_rank_batch=per_rank_batch,
                       smoke=smoke, **log_options)
    if seconds is None:
        seconds = logged_seconds(run.log)
    epochs = [{"epoch": 1, "seconds": seconds / 2, "samples": 64}, {"epoch": 2, "seconds": seconds / 2,
                                                                      "samples": 64}]
    results.write_summary(run.summary, {
        "mode": mode, "benchmark": benchmark, "status": status, "submittable": not smoke,
        "command": "harness run --worker (test)", "seconds": seconds, "samples": 128, "ranks": ranks,
        "nodes": nodes, "ranks_per_node": ranks // nodes, "per_rank_batch": per_rank_batch,
        "global_batch": ranks * per_rank_batch, "precision": "float32", "epochs": epochs,
        "steady_samples_per_second": samples_per_second,
        "quality": {"passed": status == "success"} if mode == "tta" else None})
    results.finish_run(run)
    return run


def make_inference_result(root: Path, benchmark: str = "3dgan", scenario: str = "Offline", *,
                          samples_per_second: float = 100.0, streams: int = 1, precision: str = "float32",
                          valid: bool = True, official_minimum: bool = True, smoke: bool = False,
                          system: str = SYSTEM) -> Path:
    """One finished LoadGen run with stand-in LoadGen logs (their content is LoadGen's business)."""
    run = results.allocate_inference_run(root, system, benchmark, scenario)
    for name in results.LOADGEN_LOGS:
        (run.directory / name).write_text(f"Result is : {'VALID' if valid else 'INVALID'}\n")
    return results.finish_inference_run(run, {
        "status": "success", "submittable": not smoke, "command": "harness run --mode inference (test)",
        "samples_per_second": samples_per_second, "valid": valid, "latency_ns": {"90.00": 1e6},
        "settings": {"intra_op_threads": 1, "inter_op_threads": 1, "streams": streams, "batch_size": 8,
                     "precision": precision},
        "min_duration_ms": 600000 if official_minimum else 1000, "official_minimum": official_minimum,
        "quality": {"passed": True}})


def write_system(root: Path, system: str = SYSTEM, cores: int = 4, sockets: int = 2, division: str = "closed") -> Path:
    """A system description with every MLPerf field, as `harness sysinfo` writes it, for a fixed
    test machine (the real description of this host is tested in test_sysinfo)."""
    description = {field: "unknown" for field in MLPERF_SYSTEM_FIELDS}
    description.update({
        "submitter": "tests", "division": division, "status": STATUSES["research"], "system_name": system,
        "number_of_nodes": 1, "host_processors_per_node": sockets, "host_processor_model_name": "Test CPU",
        "host_processor_core_count": cores, "host_processor_vcpu_count": cores, "accelerators_per_node": 0,
        "cpu": {"sockets": sockets, "cores_per_socket": cores, "physical_cores": sockets * cores}})
    return results.write_json_atomic(results.system_description_path(root, system), description)
