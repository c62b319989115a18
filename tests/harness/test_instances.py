"""`harness run --mode throughput`: MLPerf HPC's throughput metric, M instances trained at once.

Dry runs on a made-up 8-core node check what each instance gets (its own seed, result number
and cores); the slow test trains 2 instances of 1 rank to the smoke target for real and checks
and scores the set as MLPerf does.
"""
import json
import os
import shlex
import subprocess
import sys

import pytest

from harness import instances, launch, results
from harness.run_request import RunRequest
from reference_model.errors import InputError

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")


@pytest.fixture
def eight_cores(monkeypatch):
    """A node of 8 single-thread cores, whatever this machine has."""
    groups = [[cpu] for cpu in range(8)]
    monkeypatch.setattr(launch, "core_groups", lambda: groups)
    monkeypatch.setattr(instances, "core_groups", lambda: groups)
    for name in ("SLURM_JOB_ID", "SLURM_CPUS_ON_NODE", "SLURM_JOB_NUM_NODES"):
        monkeypatch.delenv(name, raising=False)


def dry_run(tmp_path, capsys, *extra: str) -> list[list[str]]:
    """The command lines a throughput run would start, one per instance (nothing is created)."""
    args = RunRequest.from_argv(["--mode", "throughput", "--smoke", "--data", str(tmp_path / "data"),
                                 "--results", str(tmp_path / "root"), "--system-name", "testsys_cpu",
                                 "--dry-run", *extra])
    assert instances.run_throughput(args) == 0
    assert not (tmp_path / "root").exists()
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines()]


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_each_instance_has_its_own_seed_result_and_cores(tmp_path, capsys, eight_cores):
    commands = dry_run(tmp_path, capsys, "--instances", "4", "--seed", "7")
    assert [flag(c, "--seed") for c in commands] == ["7", "8", "9", "10"]
    assert [flag(c, "--mode") for c in commands] == ["tta"] * 4, "every instance trains to the target"
    weak = tmp_path / "root" / "results" / "testsys_cpu" / "weak" / "3dgan"
    assert [flag(c, "--log-file") for c in commands] == [str(weak / f"result_{i}.txt.partial") for i in range(1, 5)]
    assert [flag(c, "-c") for c in commands] == ["0,1", "2,3", "4,5", "6,7"], "the node's cores, split"
    assert all("OMP_NUM_THREADS=2" in c for c in commands)
    assert len({flag(c, "--checkpoint-dir") for c in commands}) == 4


def test_multi_rank_instances_on_one_node_are_bound_inside_their_cores(tmp_path, capsys, eight_cores):
    commands = dry_run(tmp_path, capsys, "--instances", "2", "--ranks-per-node", "2")
    assert [c[0] for c in commands] == ["mpirun", "mpirun"]
    assert [flag(c, "--cpu-set") for c in commands] == ["0,1,2,3", "4,5,6,7"]
    assert all(flag(c, "--map-by") == "slot:PE=2" and flag(c, "--bind-to") == "core" for c in commands)


def test_instances_in_an_allocation_are_srun_steps_of_their_own(tmp_path, capsys, eight_cores, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "48")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "4")
    commands = dry_run(tmp_path, capsys, "--instances", "2", "--nodes", "2", "--ranks-per-node", "4")
    assert all(c[:3] == ["srun", "--exact", "--nodes=2"] and "--cpus-per-task=12" in c for c in commands)


def test_from_a_login_node_the_set_is_one_batch_job(tmp_path, capsys, eight_cores):
    args = RunRequest.from_argv(["--mode", "throughput", "--instances", "3", "--nodes", "2",
                                 "--ranks-per-node", "4", "--launcher", "slurm", "--dry-run",
                                 "--results", str(tmp_path / "root")])
    assert instances.run_throughput(args) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --nodes=6" in script
    step = next(line for line in script.splitlines() if "harness.cli" in line)
    assert "--mode throughput" in step and "--instances 3" in step and "--launcher srun" in step


@pytest.mark.parametrize("extra, message", [
    (("--instances", "1"), "one instance is a time-to-accuracy run"),
    (("--instances", "3", "--cores-per-rank", "4"), r"3 instances x 1 rank\(s\) x 4 core\(s\) need 12 cores"),
    (("--resume",), "must train uninterrupted"),
])
def test_refused_before_anything_runs(tmp_path, capsys, eight_cores, extra, message):
    with pytest.raises(InputError, match=message):
        dry_run(tmp_path, capsys, *extra)


@pytest.mark.slow
def test_two_instances_of_one_rank_reach_the_smoke_target_and_are_scored_as_mlperf_does(fixed_data_dir, tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two pinned instances need two cores")
    root = tmp_path / "root"
    command = [sys.executable, "-m", "harness.cli"]
    done = subprocess.run([*command, "run", "--mode", "throughput", "--instances", "2", "--smoke",
                           "--data", str(fixed_data_dir), "--results", str(root), "--epochs", "20",
                           "--max-steps-per-epoch", "6", "--warmup-epochs", "1", "--seed", "3"],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    found = results.iter_results(root)
    assert [(r.mode, r.summary["instance"]) for r in found] == [
        ("throughput", {"set": 1, "index": 1, "instances": 2}), ("throughput", {"set": 1, "index": 2, "instances": 2})]
    assert [r.summary["status"] for r in found] == ["success", "success"]
    assert {r.summary["launch"]["cores_per_rank"] for r in found} == {1}
    check = subprocess.run([*command, "check", "--per-run", str(root)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    summary = subprocess.run([*command, "summarize", "--json", str(root)], capture_output=True, text=True)
    [scored] = json.loads(summary.stdout)
    from harness.mlperf_log import read_timing

    timings = [read_timing(r.log_path) for r in found]
    assert [t.seed for t in timings] == [3, 4]
    span = (max(t.run_stop_ms for t in timings) - min(t.run_start_ms for t in timings)) / 60000
    assert scored["mode"] == "throughput" and scored["score"]["value"] == pytest.approx(span)
    assert not scored["score"]["valid"] and "2 of 2 instance(s) reached the target, 5 required" in \
        scored["score"]["reason"]
    submission = subprocess.run([*command, "check", str(root)], capture_output=True, text=True)
    assert submission.returncode == 1 and "without a time-to-accuracy result" in submission.stdout
