"""Launch paths, checked with --dry-run: mpirun for local ranks, srun in an allocation, and the
sbatch script of a 256-node run."""
import os
import subprocess
import sys

import pytest

from harness.launch import LaunchPlan, choose_launcher, mpirun_command, sbatch_script, srun_command

WORKER = ["python", "-m", "harness.cli", "run", "--worker"]


def test_auto_launcher_choice(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert choose_launcher("auto", 1) == "local"
    assert choose_launcher("auto", 2) == "mpirun"
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert choose_launcher("auto", 8) == "srun"
    assert choose_launcher("slurm", 8) == "slurm"


def test_mpirun_oversubscribes_when_ranks_exceed_cores():
    cmd = mpirun_command(LaunchPlan(ranks_per_node=2, cores_per_rank=2), WORKER, cores_per_node=2)
    assert cmd[:3] == ["mpirun", "-np", "2"]
    assert "--oversubscribe" in cmd and cmd[-len(WORKER):] == WORKER
    assert ("--allow-run-as-root" in cmd) == (os.geteuid() == 0)


def test_mpirun_pins_ranks_that_fit():
    cmd = mpirun_command(LaunchPlan(nodes=4, ranks_per_node=4, hostfile="hosts"), WORKER, cores_per_node=48)
    assert cmd[:3] == ["mpirun", "-np", "16"]
    assert cmd[cmd.index("--map-by") + 1] == "ppr:4:node:PE=12"
    assert cmd[cmd.index("--bind-to") + 1] == "core"
    assert cmd[cmd.index("--hostfile") + 1] == "hosts"
    env = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-x"]
    assert "OMP_NUM_THREADS=12" in env and "KMP_BLOCKTIME=1" in env
    assert "HOROVOD_FUSION_THRESHOLD=134217728" in env and "HARNESS_INTRA_OP_THREADS=12" in env


def test_srun_command_maps_the_allocation():
    cmd = srun_command(LaunchPlan(nodes=256, ranks_per_node=4), WORKER, cores_per_node=48)
    assert cmd[:5] == ["srun", "--nodes=256", "--ntasks-per-node=4", "--cpus-per-task=12", "--cpu-bind=cores"]
    assert any(a.startswith("--export=ALL,") and "KMP_AFFINITY=granularity=fine,compact,1,0" in a for a in cmd)


def test_sbatch_script_for_256_nodes(tmp_path):
    script = sbatch_script(LaunchPlan(nodes=256, ranks_per_node=4, partition="skx"),
                           ["run", "--mode", "tta", "--nodes", "256", "--launcher", "slurm", "--submit"],
                           cores_per_node=48, workdir=tmp_path)
    assert "#SBATCH --nodes=256" in script and "#SBATCH --ntasks-per-node=4" in script
    assert "#SBATCH --cpus-per-task=12" in script and "#SBATCH --partition=skx" in script
    assert "export KMP_BLOCKTIME=1" in script and "export OMP_NUM_THREADS=12" in script
    last = script.strip().splitlines()[-1]
    assert last.endswith("--launcher srun") and "--submit" not in last


def test_cli_dry_run_prints_the_256_node_script(tmp_path):
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--mode", "tta", "--nodes", "256",
                          "--ranks-per-node", "4", "--launcher", "slurm", "--dry-run",
                          "--results", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert out.startswith("#!/bin/bash") and "#SBATCH --nodes=256" in out
    assert not any(tmp_path.iterdir()), "a dry run must not write anything"


@pytest.mark.parametrize("flag", [["--nodes", "0"], ["--ranks-list", "2,x"], ["--mode", "nope"]])
def test_bad_flags_are_one_line_errors(flag):
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", *flag], capture_output=True, text=True)
    assert done.returncode == 2 and "error:" in done.stderr.strip().splitlines()[-1]


def test_scaling_points_and_efficiency():
    from harness.scaling import efficiency_table, scaling_points

    assert scaling_points([1, 2, 4], 8, "both") == [
        ("weak", 1, 8), ("weak", 2, 8), ("weak", 4, 8), ("strong", 1, 32), ("strong", 2, 16), ("strong", 4, 8)]
    rows = [{"scaling": "weak", "ranks": 1, "samples_per_second": 4.0},
            {"scaling": "weak", "ranks": 2, "samples_per_second": 6.0}]
    table = efficiency_table(rows)
    assert table[1]["speedup"] == pytest.approx(1.5) and table[1]["efficiency"] == pytest.approx(0.75)


def test_strong_scaling_rejects_uneven_batches():
    from harness.scaling import scaling_points
    from reference_model.errors import InputError

    with pytest.raises(InputError):
        scaling_points([3, 4], 8, "strong")


def test_scaling_dry_run_prints_each_launch(tmp_path):
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--mode", "scaling", "--ranks-list", "1,2",
                          "--scaling-type", "weak", "--dry-run", "--results", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("--worker") == 2 and "mpirun -np 2" in out
    assert not any(tmp_path.iterdir())


def test_missing_data_is_a_one_line_error_and_takes_no_result_number(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--mode", "epoch-time",
                           "--data", str(tmp_path / "missing"), "--results", str(tmp_path / "root")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("harness run: error:")
    assert not list((tmp_path / "root").glob("results/**/result_*"))
