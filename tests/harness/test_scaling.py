"""Scaling series: points that fill whole nodes, fixed cores per rank on one node, rows read from
each run's own summary, one batch job per point under Slurm, and the series' start time."""
import json
import os
import subprocess
import sys

import pytest

from harness.run_request import RunRequest
from harness.scaling import (efficiency_table, point_layout, row_from_summary, run_scaling,
                             scaling_points)
from reference_model.errors import InputError


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})})


@pytest.fixture
def two_cores(monkeypatch):
    """This node as the 2-core machine the suite runs on, whatever runs the tests."""
    for name in list(os.environ):
        if name.startswith("SLURM_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0], [1]])


def test_scaling_points_and_efficiency():
    assert scaling_points([1, 2, 4], 8, "both") == [
        ("weak", 1, 8), ("weak", 2, 8), ("weak", 4, 8), ("strong", 1, 32), ("strong", 2, 16), ("strong", 4, 8)]
    rows = [{"scaling": "weak", "ranks": 1, "samples_per_second": 4.0},
            {"scaling": "weak", "ranks": 2, "samples_per_second": 6.0}]
    table = efficiency_table(rows)
    assert table[1]["speedup"] == pytest.approx(1.5) and table[1]["efficiency"] == pytest.approx(0.75)


def test_strong_scaling_rejects_uneven_batches():
    with pytest.raises(InputError):
        scaling_points([3, 4], 8, "strong")


def test_points_fill_whole_nodes_of_ranks_per_node():
    assert point_layout(8, nodes=4, ranks_per_node=4) == (2, 4)
    assert point_layout(3, nodes=1, ranks_per_node=1) == (1, 3)
    with pytest.raises(InputError, match="6 ranks do not fill whole nodes of --ranks-per-node 4"):
        point_layout(6, nodes=4, ranks_per_node=4)
    with pytest.raises(InputError, match="need 8 nodes"):
        point_layout(32, nodes=4, ranks_per_node=4)
    with pytest.raises(InputError, match="drop --ranks-per-node"):
        point_layout(2, nodes=1, ranks_per_node=4)


def test_uneven_rank_counts_are_refused_before_anything_runs(tmp_path):
    done = harness("run", "--mode", "scaling", "--nodes", "4", "--ranks-per-node", "4", "--ranks-list", "4,6",
                   "--hostfile", str(tmp_path / "hosts"), "--results", str(tmp_path / "root"))
    assert done.returncode == 2 and "6 ranks do not fill whole nodes" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "root").exists()


def test_one_node_series_holds_cores_per_rank_fixed(tmp_path):
    done = harness("run", "--mode", "scaling", "--ranks-list", "1,2", "--scaling-type", "weak",
                   "--cores-per-rank", "1", "--dry-run", "--results", str(tmp_path))
    assert done.returncode == 0, done.stderr
    launches = [line for line in done.stdout.splitlines() if line.startswith("mpirun")]
    assert [line.split()[2] for line in launches] == ["1", "2"], "every point, 1 rank too, through mpirun"
    assert all("-x OMP_NUM_THREADS=1 " in line and "slot:PE=1" in line for line in launches)
    assert not any(tmp_path.iterdir()), "a dry run must not write anything"


def test_one_node_series_without_cores_per_rank_takes_the_largest_points_share(two_cores, capsys, tmp_path):
    args = RunRequest.from_argv(["--mode", "scaling", "--ranks-list", "1,2", "--scaling-type", "weak",
                                 "--dry-run", "--results", str(tmp_path)])
    assert run_scaling(args) == 0
    out = capsys.readouterr().out
    assert "1 core(s) per rank on every point" in out
    assert out.count("OMP_NUM_THREADS=1 ") == 2 and "OMP_NUM_THREADS=2" not in out


def test_one_node_series_that_cannot_fit_is_refused(two_cores, tmp_path):
    args = RunRequest.from_argv(["--mode", "scaling", "--ranks-list", "1,4", "--dry-run",
                                 "--results", str(tmp_path)])
    with pytest.raises(InputError, match="4 ranks on one node of 2 cores.*--oversubscribe"):
        run_scaling(args)
    args = RunRequest.from_argv(["--mode", "scaling", "--ranks-list", "1,2", "--cores-per-rank", "2",
                                 "--dry-run", "--results", str(tmp_path)])
    with pytest.raises(InputError, match="need 4 cores"):
        run_scaling(args)


def test_row_reads_ranks_samples_and_cores_from_the_runs_own_summary(tmp_path):
    summary = {"status": "success", "system": "sys", "benchmark": "3dgan", "mode": "epoch-time",
               "log": "result_3.txt", "ranks": 2, "nodes": 1, "per_rank_batch": 8, "global_batch": 16,
               "samples": 480, "steady_samples_per_second": 7.5,
               "epochs": [{"seconds": 40.0}, {"seconds": 30.0}, {"seconds": 34.0}],
               "launch": {"cores_per_rank": 1, "cores_per_node": 2, "oversubscribed": False}}
    row = row_from_summary("weak", summary, tmp_path)
    assert (row["ranks"], row["samples"], row["samples_per_second"]) == (2, 480, 7.5)
    assert (row["cores_per_rank"], row["cores"], row["epoch_seconds"]) == (1, 2, 32.0)
    assert row["result"].endswith("3dgan/result_3.json")


def test_a_rank_given_hardware_threads_counts_the_cores_behind_them(tmp_path):
    """Slurm may count hyperthreads as CPUs: 24 'cores' per rank were 12 cores on the node."""
    summary = {"status": "success", "ranks": 8, "nodes": 2, "steady_samples_per_second": 60.0,
               "launch": {"cores_per_rank": 24, "cores_per_node": 96, "oversubscribed": False},
               "rank0_cpus": {"host": "node01", "logical_cpus": 24, "physical_cores": 12}}
    row = row_from_summary("strong", summary, tmp_path)
    assert (row["cores_per_rank"], row["cores"]) == (12, 96)


@pytest.mark.parametrize("seconds", [[40.0, 30.0, 34.0], [25.0]])
def test_row_epoch_time_and_rate_count_the_same_epochs_as_the_trainer(tmp_path, seconds):
    """Epoch 1 pays for tracing and is left out of both, unless it is the only one."""
    from benchmark.trainer import EpochRecord, TrainResult

    epochs = [EpochRecord(epoch=i + 1, seconds=s, samples=80) for i, s in enumerate(seconds)]
    result = TrainResult(status="success", mode="epoch-time", benchmark="3dgan", ranks=1, per_rank_batch=8,
                         global_batch=8, precision="float32", seconds=sum(seconds), samples=240, epochs=epochs)
    row = row_from_summary("weak", result.to_dict(), tmp_path)
    steady = seconds[1:] or seconds
    assert row["epoch_seconds"] == pytest.approx(sum(steady) / len(steady))
    assert row["samples_per_second"] == pytest.approx(80 / row["epoch_seconds"])


def test_series_rows_come_from_the_summaries_and_record_started_at(two_cores, monkeypatch, tmp_path):
    """The launch itself is replaced: the rows must come from what each run's summary says."""
    measured = {1: 4.0, 2: 7.2}

    def fake_launch(point, return_summary=False):
        ranks = point.nodes * point.ranks_per_node
        return {"status": "success", "ranks": ranks, "nodes": 1, "per_rank_batch": point.per_rank_batch,
                "global_batch": ranks * point.per_rank_batch, "samples": 100 * ranks,
                "steady_samples_per_second": measured[ranks], "epochs": [{"seconds": 1.0}],
                "launch": {"cores_per_rank": point.cores_per_rank, "cores_per_node": 2}}

    monkeypatch.setattr("harness.train_launch.launch_training", fake_launch)
    monkeypatch.setattr("harness.scaling.measure_training_roofline",
                        lambda benchmark, precision: ({"gflops": 100.0, "cores": 2, "precision": "float32"}, 1e9))
    args = RunRequest.from_argv(["--mode", "scaling", "--ranks-list", "1,2", "--scaling-type", "weak",
                                 "--results", str(tmp_path), "--system-name", "test_system"])
    assert run_scaling(args) == 0
    [path] = tmp_path.glob("results/*/scaling/3dgan/series_*.json")
    series = json.loads(path.read_text())
    assert series["started_at"] and series["started_at"] <= series["finished_at"]
    one, two = series["rows"]
    assert (one["cores"], two["cores"]) == (1, 2) and two["efficiency"] == pytest.approx(0.9)
    assert two["mfu"] == pytest.approx(1e9 * 7.2 / (50.0 * 2 * 1e9))
    assert series["arguments"]["cores_per_rank"] == 1


def test_slurm_series_is_one_batch_job_per_point(tmp_path):
    common = ["run", "--mode", "scaling", "--nodes", "4", "--ranks-per-node", "4", "--ranks-list", "4,8,16",
              "--scaling-type", "weak", "--launcher", "slurm", "--results", str(tmp_path / "root")]
    dry = harness(*common, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("#!/bin/bash") == 3
    assert [f"#SBATCH --nodes={n}" in dry.stdout for n in (1, 2, 4)] == [True, True, True]
    assert not (tmp_path / "root").exists()
    written = harness(*common)
    assert written.returncode == 0, written.stderr
    scripts = sorted((tmp_path / "root" / "jobs").glob("scaling-*/*.sbatch"))
    assert len(scripts) == 3
    for script in scripts:
        text = script.read_text()
        assert text.startswith("#!/bin/bash") and "--mode epoch-time" in text and "--launcher srun" in text


def test_slurm_series_on_one_node_needs_fixed_cores_per_rank(tmp_path):
    done = harness("run", "--mode", "scaling", "--ranks-list", "1,2", "--launcher", "slurm", "--dry-run",
                   "--results", str(tmp_path))
    assert done.returncode == 2 and "needs --cores-per-rank" in done.stderr.strip().splitlines()[-1]
    done = harness("run", "--mode", "scaling", "--ranks-list", "1,2", "--scaling-type", "weak", "--launcher",
                   "slurm", "--cores-per-rank", "12", "--dry-run", "--results", str(tmp_path))
    assert done.returncode == 0 and done.stdout.count("#SBATCH --cpus-per-task=12") == 2
