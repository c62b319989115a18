"""Launch paths, checked with --dry-run: cores per rank taken where the ranks run (host file
slots, SLURM_CPUS_ON_NODE, or --cores-per-rank), pinning when the ranks fit, an sbatch script
that does not depend on the machine that writes it, and `harness run --nodes N` running the
submission set at that scale or saying what to add."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run_request import RunRequest
from harness.launch import (LaunchPlan, check_reach, choose_launcher, first_cores, intra_op_threads_here,
                            local_command, mpirun_command, place, rank0_host, read_hostfile, sbatch_script,
                            srun_command)
from reference_model.errors import InputError

WORKER = ["python", "-m", "harness.cli", "run", "--worker"]
SLURM_48_CORE_NODE = {"SLURM_JOB_ID": "42", "SLURM_CPUS_ON_NODE": "48", "SLURM_JOB_NUM_NODES": "256"}


def harness(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=cwd)


def exported(command: list[str]) -> dict[str, str]:
    """The variables an mpirun command line sets with -x KEY=VALUE."""
    pairs = [command[i + 1] for i, a in enumerate(command) if a == "-x" and "=" in command[i + 1]]
    return dict(p.split("=", 1) for p in pairs)


@pytest.fixture
def no_slurm(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SLURM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def hostfile_48(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("# two 48-core nodes\nnode01 slots=48\nnode02 slots=48  # second socket pair\n")
    return path


# -- choosing a launcher that reaches the nodes ------------------------------------------------
def test_auto_launcher_choice(no_slurm, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    assert choose_launcher("auto", 1) == "local"
    assert choose_launcher("auto", 2) == "mpirun"
    assert choose_launcher("auto", 8, nodes=2, hostfile=Path("hosts")) == "mpirun"
    with pytest.raises(InputError, match="--hostfile.*--launcher slurm"):
        choose_launcher("auto", 8, nodes=2)
    fake_sbatch(tmp_path)
    assert choose_launcher("auto", 8, nodes=2) == "slurm"
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert choose_launcher("auto", 8, nodes=2) == "srun"
    assert choose_launcher("slurm", 8) == "slurm"


def test_launches_that_would_put_every_rank_here_are_refused(no_slurm, monkeypatch):
    with pytest.raises(InputError, match="needs --hostfile"):
        check_reach("mpirun", LaunchPlan(nodes=4, ranks_per_node=4))
    with pytest.raises(InputError, match="runs one rank"):
        check_reach("local", LaunchPlan(ranks_per_node=2))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "4")
    with pytest.raises(InputError, match="allocation has 4 node"):
        check_reach("srun", LaunchPlan(nodes=256, ranks_per_node=4))
    check_reach("srun", LaunchPlan(nodes=4, ranks_per_node=4))


# -- host files --------------------------------------------------------------------------------
def test_hostfile_slots_comments_and_repeated_hosts(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("a slots=24\n\n# comment\nb slots=48 max_slots=48\na slots=24\n")
    assert read_hostfile(path) == {"a": 48, "b": 48}


@pytest.mark.parametrize("text, message", [("node01 slots=forty\n", "line 1"), ("n1 slots=4\nn2 cpus=4\n", "line 2"),
                                           ("# nothing\n", "no hosts")])
def test_hostfile_with_bad_syntax_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "hosts"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_hostfile(path)


def test_hostfile_with_too_few_or_unlike_hosts_is_refused(tmp_path, hostfile_48):
    with pytest.raises(InputError, match="lists 2 host"):
        place(LaunchPlan(nodes=4, ranks_per_node=4, hostfile=hostfile_48), "mpirun")
    unlike = tmp_path / "unlike"
    unlike.write_text("n1 slots=48\nn2 slots=24\n")
    with pytest.raises(InputError, match="nodes differ"):
        place(LaunchPlan(nodes=2, ranks_per_node=4, hostfile=unlike), "mpirun")


# -- cores per rank and binding ----------------------------------------------------------------
def test_host_file_of_48_slots_gives_12_pinned_cores_per_rank(hostfile_48):
    plan = LaunchPlan(nodes=2, ranks_per_node=4, hostfile=hostfile_48)
    placement = place(plan, "mpirun")
    assert (placement.cores_per_rank, placement.oversubscribed) == (12, False)
    assert "slots=48" in placement.source
    cmd = mpirun_command(plan, WORKER, placement)
    assert cmd[:3] == ["mpirun", "-np", "8"] and cmd[cmd.index("--hostfile") + 1] == str(hostfile_48)
    assert cmd[cmd.index("--map-by") + 1] == "ppr:4:node:PE=12" and cmd[cmd.index("--bind-to") + 1] == "core"
    assert "--oversubscribe" not in cmd
    env = exported(cmd)
    assert env["OMP_NUM_THREADS"] == env["HARNESS_CPUS_PER_RANK"] == "12"
    assert "HARNESS_INTRA_OP_THREADS" not in env, "the pool is sized on the rank's node (intra_op_threads_here)"
    assert env["KMP_BLOCKTIME"] == "1" and env["HOROVOD_FUSION_THRESHOLD"] == "134217728"


def test_an_explicit_intra_op_pool_reaches_every_rank(hostfile_48):
    plan = LaunchPlan(nodes=2, ranks_per_node=4, hostfile=hostfile_48, intra_op_threads=6)
    env = exported(mpirun_command(plan, WORKER, place(plan, "mpirun")))
    assert env["OMP_NUM_THREADS"] == env["HARNESS_INTRA_OP_THREADS"] == "6" and env["HARNESS_CPUS_PER_RANK"] == "12"


@pytest.mark.parametrize("affinity, groups, cpus_per_rank, threads", [
    ({0, 1, 48, 49}, [[0, 48], [1, 49]], 4, 2),  # Slurm's 4 "CPUs" are 2 cores x 2 hardware threads
    ({0, 1, 2, 3}, [[0], [1], [2], [3]], 4, 4),  # no SMT siblings: one thread per CPU, as before
    ({0, 1}, [[0], [1]], 4, 4),  # oversubscribed, unpinned: the launcher's count stands
    (set(range(96)), [[c, c + 48] for c in range(48)], 96, 48),  # one unpinned rank on a 2-way SMT node
])
def test_the_intra_op_pool_is_one_thread_per_core_behind_the_rank(monkeypatch, affinity, groups, cpus_per_rank,
                                                                   threads):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: affinity)
    monkeypatch.setattr("harness.launch.core_groups", lambda: groups)
    assert intra_op_threads_here(cpus_per_rank) == threads


def test_rank0_runs_here_only_when_the_host_file_lists_this_machine_first(tmp_path, hostfile_48):
    hosts = tmp_path / "here"
    for first in (socket.gethostname(), socket.gethostname().split(".")[0], "localhost", "127.0.0.1"):
        hosts.write_text(f"{first} slots=2\nnode02 slots=2\n")
        assert rank0_host(LaunchPlan(nodes=2, hostfile=hosts), "mpirun") is None, first
    assert rank0_host(LaunchPlan(nodes=2, hostfile=hostfile_48), "mpirun") == "node01"
    assert rank0_host(LaunchPlan(nodes=2, hostfile=hostfile_48), "local") is None, "no host file in play"


def test_mpirun_passes_the_submission_identity_on_to_ranks_on_other_hosts(monkeypatch, hostfile_48):
    monkeypatch.setenv("HARNESS_SUBMITTER", "CERN")
    monkeypatch.delenv("HARNESS_DIVISION", raising=False)
    plan = LaunchPlan(nodes=2, ranks_per_node=4, hostfile=hostfile_48)
    cmd = mpirun_command(plan, WORKER, place(plan, "mpirun"))
    forwarded = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-x" and "=" not in cmd[i + 1]]
    assert "HARNESS_SUBMITTER" in forwarded and "HARNESS_DIVISION" not in forwarded


def test_slurm_48_core_node_gives_12_cores_per_rank(monkeypatch):
    for key, value in SLURM_48_CORE_NODE.items():
        monkeypatch.setenv(key, value)
    plan = LaunchPlan(nodes=256, ranks_per_node=4)
    placement = place(plan, "srun")
    assert placement.cores_per_rank == 12 and "SLURM_CPUS_ON_NODE=48" in placement.source
    cmd = srun_command(plan, WORKER, placement)
    assert cmd[:5] == ["srun", "--nodes=256", "--ntasks-per-node=4", "--cpus-per-task=12", "--cpu-bind=cores"]
    export = next(a for a in cmd if a.startswith("--export=ALL,"))
    assert "OMP_NUM_THREADS=12" in export and "KMP_AFFINITY=granularity=fine,compact,1,0" in export


def test_explicit_cores_per_rank_that_do_not_fit_need_oversubscribe(monkeypatch):
    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0], [1]])
    plan = LaunchPlan(ranks_per_node=2, cores_per_rank=2)
    with pytest.raises(InputError, match="need 4 cores, a node has 2.*--oversubscribe"):
        place(plan, "mpirun")
    plan.oversubscribe = True
    placement = place(plan, "mpirun")
    assert placement.oversubscribed and placement.record("mpirun", plan)["oversubscribed"] is True
    cmd = mpirun_command(plan, WORKER, placement)
    assert "--oversubscribe" in cmd and cmd[cmd.index("--bind-to") + 1] == "none"
    assert ("--allow-run-as-root" in cmd) == (os.geteuid() == 0)


def test_ranks_that_fit_are_pinned_and_more_ranks_than_cores_share_unavoidably(monkeypatch):
    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0], [1]])
    fits = place(LaunchPlan(ranks_per_node=2), "mpirun")
    assert (fits.cores_per_rank, fits.binding) == (1, "cores")
    assert "--oversubscribe" not in mpirun_command(LaunchPlan(ranks_per_node=2), WORKER, fits)
    crowded = place(LaunchPlan(ranks_per_node=4), "mpirun")
    assert crowded.oversubscribed and crowded.cores_per_rank == 1


def test_one_rank_gets_the_environment_and_binding_of_an_mpirun_rank(monkeypatch):
    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0, 2], [1, 3]])
    plan = LaunchPlan(ranks_per_node=1, cores_per_rank=1)
    placement = place(plan, "local")
    command, env, cpus = local_command(plan, WORKER, placement)
    assert command == WORKER and cpus == {0, 2} == first_cores(1)
    two_ranks = LaunchPlan(ranks_per_node=2, cores_per_rank=1)
    mpirun_env = exported(mpirun_command(two_ranks, WORKER, place(two_ranks, "mpirun")))
    assert mpirun_env == plan.environment(1)
    assert {k: env[k] for k in mpirun_env} == mpirun_env, "every variable an mpirun rank gets, the one rank gets"


def test_one_rank_dry_run_is_a_pinned_process_with_the_rank_environment(no_slurm, tmp_path):
    done = harness("run", "--mode", "epoch-time", "--cores-per-rank", "1", "--dry-run",
                   "--results", str(tmp_path))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1].split()
    assert line[0] == "env" and "OMP_NUM_THREADS=1" in line and "KMP_BLOCKTIME=1" in line
    assert "KMP_AFFINITY=granularity=fine,compact,1,0" in line and "HARNESS_CPUS_PER_RANK=1" in line
    assert line[line.index("taskset") + 1:line.index("taskset") + 3] == ["-c", str(min(first_cores(1)))]


# -- the CLI, end to end in dry runs -----------------------------------------------------------
def test_cli_dry_run_with_a_48_slot_host_file(no_slurm, tmp_path, hostfile_48):
    done = harness("run", "--mode", "epoch-time", "--nodes", "2", "--ranks-per-node", "4", "--system-name",
                   "cluster_skx", "--hostfile", str(hostfile_48), "--dry-run", "--results", str(tmp_path / "root"))
    assert done.returncode == 0, done.stderr
    assert "-x OMP_NUM_THREADS=12" in done.stdout and "ppr:4:node:PE=12" in done.stdout
    assert "--oversubscribe" not in done.stdout and "12 core(s) per rank" in done.stderr
    assert "--system-name cluster_skx" in done.stdout and "/results/cluster_skx/epoch_time/" in done.stdout


def test_a_host_file_that_leaves_this_machine_out_needs_the_system_named(no_slurm, tmp_path, hostfile_48):
    """From a login node the ranks run elsewhere: this machine's CPU must not name or describe them."""
    done = harness("run", "--mode", "epoch-time", "--nodes", "2", "--hostfile", str(hostfile_48), "--dry-run",
                   "--results", str(tmp_path / "root"), env={"HARNESS_SYSTEM_NAME": ""})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()[-1:]
    assert "rank 0 runs on node01, not on this machine" in line and "--system-name NAME" in line
    assert not (tmp_path / "root").exists()


def test_cli_dry_run_with_slurm_variables_of_a_48_core_node(tmp_path):
    done = harness("run", "--mode", "tta", "--nodes", "256", "--ranks-per-node", "4", "--launcher", "srun",
                   "--dry-run", "--results", str(tmp_path / "root"), env=SLURM_48_CORE_NODE)
    assert done.returncode == 0, done.stderr
    assert "--cpus-per-task=12" in done.stdout and "OMP_NUM_THREADS=12" in done.stdout
    assert not (tmp_path / "root").exists(), "a dry run must not write anything"


def sbatch_dry_run(monkeypatch, capsys, cores: int, argv: list[str]) -> str:
    from harness.train_launch import launch_training

    monkeypatch.setattr("harness.launch.core_groups", lambda: [[c] for c in range(cores)])
    assert launch_training(RunRequest.from_argv(argv)) == 0
    return capsys.readouterr().out


def test_sbatch_script_does_not_depend_on_the_machine_that_writes_it(no_slurm, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = ["--mode", "tta", "--nodes", "256", "--ranks-per-node", "4", "--launcher", "slurm",
            "--dry-run", "--results", "rel/root", "--partition", "skx"]
    on_login_node = sbatch_dry_run(monkeypatch, capsys, 2, argv)
    assert on_login_node == sbatch_dry_run(monkeypatch, capsys, 48, argv)
    assert "--cpus-per-task" not in on_login_node and "OMP_NUM_THREADS" not in on_login_node
    assert "SLURM_CPUS_ON_NODE / 4 ranks per node" in on_login_node
    assert "Intra-op threads: one per physical core behind each rank's CPUs" in on_login_node
    assert "#SBATCH --nodes=256" in on_login_node and "#SBATCH --partition=skx" in on_login_node
    assert f"#SBATCH --output={tmp_path}/%x-%j.out" in on_login_node
    last = on_login_node.strip().splitlines()[-2]
    assert f"--results {tmp_path}/rel/root" in last and "--launcher srun" in last and "--dry-run" not in last


def test_sbatch_script_with_explicit_cores_per_rank(tmp_path):
    plan = LaunchPlan(nodes=4, ranks_per_node=4, cores_per_rank=12, intra_op_threads=6)
    script = sbatch_script(plan, [["run", "--mode", "tta", "--cores-per-rank", "12", "--intra-op-threads", "6"]],
                           tmp_path)
    assert "#SBATCH --cpus-per-task=12" in script and "from --cores-per-rank" in script
    assert "Intra-op threads" not in script, "an explicit pool is in the step's own flags"
    assert "#SBATCH --signal=TERM@300" in script, "the ranks get a stop warning before the time limit"
    assert script.startswith("#!/bin/bash") and script.rstrip().endswith("exit $status")


# -- `harness run --nodes N` without --mode ----------------------------------------------------
def fake_sbatch(directory: Path) -> Path:
    """An `sbatch` that keeps the script it was given and answers like Slurm."""
    path = directory / "sbatch"
    path.write_text(f'#!/bin/sh\ncp "$1" {directory}/submitted.sbatch\necho "Submitted batch job 7"\n')
    path.chmod(0o755)
    return path


def test_many_nodes_here_is_an_error_saying_what_to_add(tmp_path):
    done = harness("run", "--nodes", "256", "--results", str(tmp_path / "root"))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("harness run: error: --nodes 256") and "--hostfile" in last and "--launcher slurm" in last
    assert not (tmp_path / "root").exists(), "nothing may run on one node when 256 were asked for"


def test_many_nodes_from_a_login_node_is_one_batch_job_of_the_submission_set(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_sbatch(bin_dir)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    root = tmp_path / "root"
    refused = harness("run", "--nodes", "256", "--ranks-per-node", "4", "--results", str(root), env=env)
    assert refused.returncode == 2 and "add --submit" in refused.stderr.strip().splitlines()[-1]
    done = harness("run", "--nodes", "256", "--ranks-per-node", "4", "--results", str(root), "--submit", env=env)
    assert done.returncode == 0, done.stderr
    assert "Submitted batch job 7" in done.stdout
    script = (bin_dir / "submitted.sbatch").read_text()
    steps = [line for line in script.splitlines() if "harness.cli run" in line]
    assert len(steps) == 2 and "--mode tta" in steps[0] and "--mode epoch-time" in steps[1]
    assert all("--nodes 256 --ranks-per-node 4" in s and "--launcher srun" in s for s in steps)
    assert list((root / "jobs").glob("*.sbatch")), "the submitted script is kept beside its results"


def test_many_nodes_with_a_host_file_runs_the_submission_set_through_mpirun(no_slurm, tmp_path, hostfile_48):
    done = harness("run", "--nodes", "2", "--ranks-per-node", "4", "--hostfile", str(hostfile_48),
                   "--dry-run", "--results", str(tmp_path / "root"), env={"HARNESS_SYSTEM_NAME": "cluster_skx"})
    assert done.returncode == 0, done.stderr
    launches = [line for line in done.stdout.splitlines() if line.startswith("mpirun -np 8")]
    assert len(launches) == 2
    assert "--mode tta" in launches[0] and "--mode epoch-time" in launches[1]


def test_a_tta_run_of_a_benchmark_whose_reference_never_reached_its_target_is_warned(no_slurm, monkeypatch, capsys,
                                                                                     tmp_path):
    from harness.train_launch import launch_training

    argv = ["--mode", "tta", "--nodes", "4", "--launcher", "slurm", "--dry-run", "--results", str(tmp_path)]
    shipped = tmp_path / "3dgan-generator.weights.h5"
    monkeypatch.setattr("reference_model.checkpoint.frozen_checkpoint", lambda benchmark: shipped)
    assert launch_training(RunRequest.from_argv(argv)) == 0
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert "no 3dgan reference generator has reached its target 3dgan-quality-v" in warning and "--smoke" in warning
    shipped.write_bytes(b"weights")
    assert launch_training(RunRequest.from_argv(argv)) == 0
    assert "warning" not in capsys.readouterr().err, "a shipped reference shows the target reachable"
    shipped.unlink()
    assert launch_training(RunRequest.from_argv([*argv, "--smoke"])) == 0
    assert "warning" not in capsys.readouterr().err, "a smoke run is judged by the smoke thresholds"


def test_many_nodes_says_the_global_batch_the_peak_rate_and_the_missing_rcp(no_slurm, monkeypatch, capsys, tmp_path):
    """Issue 23 section 5: at 256 nodes the closed rule gives batch 256 x 4 x 8 and peak 0.001 x 1024,
    and no RCP covers that batch, so the submitter must add its reference runs."""
    from harness.train_launch import launch_submission_set, launch_training
    from tests.harness.fake_runs import write_rcps

    monkeypatch.setattr("benchmark.rcp.RCP_DIR", tmp_path)
    write_rcps(tmp_path, global_batch=16)
    argv = ["--nodes", "256", "--ranks-per-node", "4", "--launcher", "slurm", "--dry-run", "--results", str(tmp_path)]
    assert launch_submission_set(RunRequest.from_argv(argv)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("#!/bin/bash"), "stdout stays the batch script"
    assert "global batch 256 node(s) x 4 rank(s) x 8 per rank = 8192; closed learning-rate rule: peak " \
           "0.001 x 1024 ranks = 1.024" in err
    assert "missing RCP at global batch 8192 (above the largest RCP, 16); the submitter must add the RCP runs " \
           "at global batch 8192 (at least 3 converged reference runs, MLPerf asks for 10" in err
    assert launch_training(RunRequest.from_argv(["--mode", "tta", "--nodes", "2", *argv[4:]])) == 0  # 2 x 1 x 8
    err = capsys.readouterr().err
    assert "[harness] RCP found for global batch 16: runs must converge in at least 128 samples" in err


@pytest.mark.parametrize("flag", [["--nodes", "0"], ["--ranks-list", "2,x"], ["--mode", "nope"]])
def test_bad_flags_are_one_line_errors(flag):
    done = harness("run", *flag)
    assert done.returncode == 2 and "error:" in done.stderr.strip().splitlines()[-1]


def test_missing_data_is_a_one_line_error_and_takes_no_result_number(tmp_path):
    done = harness("run", "--mode", "epoch-time", "--data", str(tmp_path / "missing"),
                   "--results", str(tmp_path / "root"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("harness run: error:")
    assert not list((tmp_path / "root").glob("results/**/result_*"))


PROBE = """import json, os, sys
json.dump({"status": "success", "mode": "epoch-time", "benchmark": "3dgan", "ranks": 1,
           "cpus": sorted(os.sched_getaffinity(0)),
           "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME")}},
          open(sys.argv[1], "w"))
"""


def test_the_single_rank_process_really_is_pinned_and_given_the_rank_environment(
        no_slurm, monkeypatch, fixed_data_dir, tmp_path):
    from harness.train_launch import launch_training

    monkeypatch.setattr("harness.train_launch.worker_arguments",
                        lambda args, system, data, log, summary, ckpt: [sys.executable, "-c", PROBE, str(summary)])
    args = RunRequest.from_argv(["--mode", "epoch-time", "--cores-per-rank", "1",
                                 "--data", str(fixed_data_dir), "--results", str(tmp_path)])
    summary = launch_training(args, return_summary=True)
    assert summary["cpus"] == sorted(first_cores(1))
    assert summary["env"] == {"OMP_NUM_THREADS": "1", "KMP_AFFINITY": "granularity=fine,compact,1,0",
                              "KMP_BLOCKTIME": "1"}
    assert summary["launch"]["cores_per_rank"] == 1 and summary["launch"]["binding"] == "cores"


@pytest.mark.slow
def test_one_rank_run_records_its_placement(fixed_data_dir, tmp_path):
    done = harness("run", "--mode", "epoch-time", "--cores-per-rank", "1", "--data", str(fixed_data_dir),
                   "--results", str(tmp_path), "--epochs", "1", "--max-steps-per-epoch", "1",
                   "--warmup-epochs", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("results/*/*/3dgan/result_*.json")
    summary = json.loads(path.read_text())
    launch = summary["launch"]
    assert launch["launcher"] == "local" and launch["cores_per_rank"] == 1
    assert launch["binding"] == "cores" and launch["oversubscribed"] is False
    assert summary["threads"]["intra_op"] == 1, "the rank sized its pool on the one core it was pinned to"


def test_a_started_process_is_pinned_to_exactly_its_cpus_or_left_alone():
    from harness.launch import pin_on_start

    assert pin_on_start(None) is None and pin_on_start(set()) is None
    cpu = min(os.sched_getaffinity(0))
    probe = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    pinned = subprocess.run(probe, capture_output=True, text=True, preexec_fn=pin_on_start({cpu}))
    assert pinned.stdout.strip() == f"[{cpu}]"


def test_the_local_equivalent_is_the_environment_the_pin_and_the_worker(monkeypatch):
    from harness.launch import local_equivalent

    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0, 2], [1, 3]])
    plan = LaunchPlan(cores_per_rank=1)
    shown = local_equivalent(plan, WORKER, place(plan, "local"), {0, 2})
    assert shown[0] == "env" and shown[-len(WORKER):] == WORKER
    assert shown[shown.index("taskset"):shown.index("taskset") + 3] == ["taskset", "-c", "0,2"]
    assert "OMP_NUM_THREADS=1" in shown
    assert "taskset" not in local_equivalent(plan, WORKER, place(plan, "local"), None)


STOPPABLE_RANK = """import json, signal, sys, time
def stop(*_):
    json.dump({"status": "aborted", "mode": "epoch-time", "benchmark": "3dgan", "ranks": 1,
               "reason": "SIGTERM during epoch 1 after step 3; checkpoint saved"}, open(sys.argv[1], "w"))
    sys.exit(1)
signal.signal(signal.SIGTERM, stop)
open(sys.argv[2], "w").write("training")
time.sleep(300)
"""

LAUNCHER = """import sys
import harness.train_launch as launch
from harness.run_request import RunRequest
rank, data, root, ready = sys.argv[1:5]
launch.worker_arguments = lambda request, system, d, log, summary, ckpt: [
    sys.executable, "-c", rank, str(summary), ready]
launch.launch_training(RunRequest.from_argv(["--mode", "epoch-time", "--cores-per-rank", "1", "--data", data,
                                             "--results", root, "--launcher", "local"]))
"""


def test_a_sigterm_to_the_launcher_reaches_the_rank_and_the_run_is_recorded(no_slurm, fixed_data_dir, tmp_path):
    """A batch system's time limit or the background queue stopping: the rank checkpoints and the
    run is recorded as aborted with its reason, not left unfinished by a launcher that died first."""
    import signal
    import time

    ready = tmp_path / "ready"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, STOPPABLE_RANK, str(fixed_data_dir),
                                 str(tmp_path / "root"), str(ready)], cwd=Path(__file__).resolve().parents[2],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    assert ready.exists(), launcher.communicate()[1][-2000:]
    launcher.send_signal(signal.SIGTERM)
    launcher.communicate(timeout=60)
    [summary] = (tmp_path / "root").glob("results/*/epoch_time/3dgan/result_*.json")
    recorded = json.loads(summary.read_text())
    assert recorded["status"] == "aborted" and recorded["reason"].startswith("SIGTERM during epoch 1")
    assert not list((tmp_path / "root").rglob("*.partial"))


SIGTERM_PARENT = """
import pathlib, signal, subprocess, sys, time
from harness.launch import sigterm_passed_on
root = pathlib.Path(sys.argv[1])
child = ("import signal, sys, time, pathlib; p = pathlib.Path(sys.argv[1]); "
         "signal.signal(signal.SIGTERM, lambda *_: (p.write_text('stopped'), sys.exit(1))); "
         "p.with_suffix('.ready').write_text(''); time.sleep(60)")
children, before = [], signal.getsignal(signal.SIGTERM)
with sigterm_passed_on(children):
    for name in ("a", "b"):
        children.append(subprocess.Popen([sys.executable, "-c", child, str(root / name)]))
    while len(list(root.glob("*.ready"))) < 2:
        time.sleep(0.05)
    signal.raise_signal(signal.SIGTERM)
    codes = [c.wait(timeout=30) for c in children]
print(codes, signal.getsignal(signal.SIGTERM) == before)
"""


def test_a_sigterm_inside_the_context_reaches_every_child_and_not_this_process(tmp_path):
    """What the launcher and a throughput set's parent do while their children run. The parent
    is a fresh process: a SIGTERM to a test worker would end the worker, whatever state earlier
    tests left in it."""
    parent = subprocess.run([sys.executable, "-c", SIGTERM_PARENT, str(tmp_path)], capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert parent.returncode == 0, parent.stderr  # the parent lived on
    assert parent.stdout.split() == ["[1,", "1]", "True"], "each child stopped itself; the handler was restored"
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text() == "stopped"
