"""The real distributed path: 2 Horovod ranks under mpirun on tiny stand-in data.

Time to accuracy against the smoke target, epoch time with resume, MLPerf compliance of the
log a real run wrote, and a rank killed mid-run ending the job with an aborted record.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.compliance import check_log

pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI is not installed")]

ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
       "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def harness_run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


def summaries(root: Path, folder: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob(f"results/*/{folder}/3dgan/result_*.json"))]


def test_two_rank_tta_reaches_the_smoke_target_and_its_log_complies(fixed_data_dir, tmp_path):
    done = harness_run("--mode", "tta", "--smoke", "--ranks-per-node", "2", "--data", str(fixed_data_dir),
                       "--results", str(tmp_path), "--epochs", "20", "--max-steps-per-epoch", "6",
                       "--warmup-epochs", "1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [summary] = summaries(tmp_path, "strong")
    assert summary["status"] == "success" and summary["ranks"] == 2 and summary["submittable"] is False
    assert summary["quality"]["passed"] is True
    log = tmp_path / "results" / summary["system"] / "strong" / "3dgan" / summary["log"]
    compliance = check_log(log, "3dgan")
    assert compliance.passed, compliance.messages
    truncated = tmp_path / "no_run_stop.txt"
    truncated.write_text("".join(line for line in log.read_text().splitlines(keepends=True)
                                 if '"key": "run_stop"' not in line))
    assert not check_log(truncated, "3dgan").passed


def test_two_rank_epoch_time_resumes_from_its_checkpoint(fixed_data_dir, tmp_path):
    common = ["--mode", "epoch-time", "--ranks-per-node", "2", "--data", str(fixed_data_dir),
              "--results", str(tmp_path), "--max-steps-per-epoch", "3"]
    first = harness_run(*common, "--epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    second = harness_run(*common, "--epochs", "2", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    first_summary, second_summary = summaries(tmp_path, "epoch_time")
    assert first_summary["status"] == second_summary["status"] == "success"
    assert second_summary["resumed_from_epoch"] == 1
    assert first_summary["threads"]["intra_op"] == first_summary["launch"]["cores_per_rank"], \
        "each rank, pinned to its cores, runs one intra-op thread per core"
    assert [e["epoch"] for e in second_summary["epochs"]] == [2]
    log = tmp_path / "results" / second_summary["system"] / "epoch_time" / "3dgan" / second_summary["log"]
    assert '"key": "resumed"' in log.read_text()
    assert first_summary["log"] != second_summary["log"], "a relaunch must not reuse a result file"


def _rank_pid(rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"--worker" in cmdline and f"OMPI_COMM_WORLD_RANK={rank}\0".encode() in environ:
            return int(entry.name)
    return None


def test_a_dead_rank_ends_the_job_with_an_aborted_record(fixed_data_dir, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--mode", "epoch-time", "--ranks-per-node", "2",
         "--data", str(fixed_data_dir), "--results", str(tmp_path), "--epochs", "50",
         "--max-steps-per-epoch", "3", "--hang-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            logs = list(tmp_path.glob("results/*/epoch_time/3dgan/result_*.txt.partial"))
            if logs and '"key": "epoch_stop"' in logs[0].read_text():
                break
            time.sleep(1)
        pid = _rank_pid(1)
        assert pid is not None, "rank 1 not found"
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = process.communicate(timeout=120)
        assert time.monotonic() - killed_at < 120
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    [summary] = summaries(tmp_path, "epoch_time")
    assert summary["status"] == "aborted" and summary["reason"]
    log = tmp_path / "results" / summary["system"] / "epoch_time" / "3dgan" / summary["log"]
    run_stops = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines()
                 if '"key": "run_stop"' in line]
    assert len(run_stops) == 1 and run_stops[0]["metadata"]["status"] == "aborted"
