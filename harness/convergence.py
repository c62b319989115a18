"""Convergence curves (MLPerf's "reference convergence points"), read from training logs.

Every evaluation of a time-to-accuracy run logs the quality objective and every metric;
this turns one log into the curve of each metric against samples seen and wall time, the
data behind the time-to-accuracy target (`benchmark/convergence/`).
"""
from __future__ import annotations

from pathlib import Path

from harness.mlperf_log import parse_log


def convergence_curve(log: Path) -> dict:
    """The run's evaluations as {samples, seconds, objective, passed, metrics} points."""
    records = parse_log(Path(log))
    value = {r["key"]: r.get("value") for r in records}
    per_epoch = int(value.get("train_samples") or 0)
    run_start = next(r["time_ms"] for r in records if r["key"] == "run_start")
    points = []
    for record in records:
        if record["key"] != "eval_accuracy":
            continue
        meta = record.get("metadata", {})
        points.append({"epoch": meta.get("epoch_num"), "samples": per_epoch * int(meta.get("epoch_num", 0)),
                       "seconds": (record["time_ms"] - run_start) / 1000.0,
                       "objective": record["value"], "passed": meta.get("passed"),
                       "metrics": {k: m["value"] for k, m in (meta.get("metrics") or {}).items()}})
    stop = next((r for r in records if r["key"] == "run_stop"), None)
    return {"benchmark": value.get("submission_benchmark"), "seed": value.get("seed"),
            "global_batch_size": value.get("global_batch_size"), "precision": value.get("precision"),
            "quality_thresholds": value.get("quality_thresholds"),
            "status": (stop or {}).get("metadata", {}).get("status", "running"), "points": points}
