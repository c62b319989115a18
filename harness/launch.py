"""How a run reaches its ranks: in-process, `mpirun`, `srun` inside an allocation, or an
sbatch script outside one. Every path can print exactly what it would run (`--dry-run`).

The defaults are the source slides' tuned settings for 2-socket Xeon nodes (4 ranks per node
mapped to NUMA domains, KMP_BLOCKTIME=1, compact affinity, inter-op 2, a 128 MiB Horovod
fusion buffer); every one is a flag.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from reference_model.errors import InputError

LAUNCHERS = ("auto", "local", "mpirun", "srun", "slurm")
HOROVOD_FUSION_THRESHOLD = 134217728  # 128 MiB, from the slides' 256-node run


@dataclass
class LaunchPlan:
    """The shape of the job and the settings every rank gets."""

    nodes: int = 1
    ranks_per_node: int = 1
    cores_per_rank: Optional[int] = None  # default: the node's cores / ranks per node
    intra_op_threads: Optional[int] = None  # default: cores per rank
    inter_op_threads: int = 2
    kmp_blocktime: int = 1
    kmp_affinity: str = "granularity=fine,compact,1,0"
    fusion_threshold: int = HOROVOD_FUSION_THRESHOLD
    hostfile: Optional[Path] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    time_limit: str = "02:00:00"
    job_name: str = "3dgan-benchmark"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def ranks(self) -> int:
        return self.nodes * self.ranks_per_node

    def resolved_cores_per_rank(self, cores_per_node: int) -> int:
        return self.cores_per_rank or max(1, cores_per_node // self.ranks_per_node)

    def environment(self, cores_per_node: int) -> dict[str, str]:
        cores = self.resolved_cores_per_rank(cores_per_node)
        env = {
            "OMP_NUM_THREADS": str(cores),
            "KMP_BLOCKTIME": str(self.kmp_blocktime),
            "KMP_AFFINITY": self.kmp_affinity,
            "HOROVOD_FUSION_THRESHOLD": str(self.fusion_threshold),
            "HARNESS_INTRA_OP_THREADS": str(self.intra_op_threads or cores),
            "HARNESS_INTER_OP_THREADS": str(self.inter_op_threads),
            "HARNESS_NODES": str(self.nodes),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        env.update(self.extra_env)
        return env


def choose_launcher(requested: str, ranks: int) -> str:
    """`auto`: in-process for one rank, srun inside a Slurm allocation, mpirun otherwise."""
    if requested != "auto":
        return requested
    if "SLURM_JOB_ID" in os.environ and ranks > 1:
        return "srun"
    return "local" if ranks == 1 else "mpirun"


def mpirun_command(plan: LaunchPlan, worker: list[str], cores_per_node: int) -> list[str]:
    """Open MPI command line: ranks mapped per node, pinned to cores when they fit."""
    cores = plan.resolved_cores_per_rank(cores_per_node)
    cmd = ["mpirun", "-np", str(plan.ranks)]
    if plan.hostfile:
        cmd += ["--hostfile", str(plan.hostfile)]
    fits = plan.ranks_per_node * cores <= cores_per_node
    if fits and plan.nodes > 1:
        cmd += ["--map-by", f"ppr:{plan.ranks_per_node}:node:PE={cores}", "--bind-to", "core"]
    elif fits:
        cmd += ["--map-by", f"slot:PE={cores}", "--bind-to", "core"]
    else:
        cmd += ["--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    for key, value in sorted(plan.environment(cores_per_node).items()):
        cmd += ["-x", f"{key}={value}"]
    for name in ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH"):  # forward the caller's environment
        if name in os.environ:
            cmd += ["-x", name]
    return cmd + worker


def srun_command(plan: LaunchPlan, worker: list[str], cores_per_node: int) -> list[str]:
    cores = plan.resolved_cores_per_rank(cores_per_node)
    env = ",".join(f"{k}={v}" for k, v in sorted(plan.environment(cores_per_node).items()))
    return ["srun", f"--nodes={plan.nodes}", f"--ntasks-per-node={plan.ranks_per_node}",
            f"--cpus-per-task={cores}", "--cpu-bind=cores", "--kill-on-bad-exit=1",
            f"--export=ALL,{env}"] + worker


def sbatch_script(plan: LaunchPlan, harness_args: list[str], cores_per_node: int,
                  workdir: Path) -> str:
    """A batch script that re-enters `harness run` inside the allocation, launched with srun."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={plan.job_name}", f"#SBATCH --nodes={plan.nodes}",
             f"#SBATCH --ntasks-per-node={plan.ranks_per_node}",
             f"#SBATCH --cpus-per-task={plan.resolved_cores_per_rank(cores_per_node)}",
             f"#SBATCH --time={plan.time_limit}", "#SBATCH --exclusive",
             f"#SBATCH --output={workdir}/%x-%j.out"]
    if plan.partition:
        lines.append(f"#SBATCH --partition={plan.partition}")
    if plan.account:
        lines.append(f"#SBATCH --account={plan.account}")
    lines += ["set -euo pipefail", f"cd {shlex.quote(str(workdir))}"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(plan.environment(cores_per_node).items())]
    args = [a for a in harness_args if a not in ("--submit", "--dry-run")]
    args = _replace_flag(args, "--launcher", "srun")
    lines.append(shlex.join([sys.executable, "-m", "harness.cli", *args]))
    return "\n".join(lines) + "\n"


def _replace_flag(args: list[str], flag: str, value: str) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out + [flag, value]


def submit(script: str, directory: Path) -> str:
    """Write the batch script and submit it; return sbatch's answer (the job id line)."""
    if shutil.which("sbatch") is None:
        raise InputError("--submit: sbatch not found; run on a Slurm login node or drop --submit "
                         "and submit the printed script yourself")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "harness-run.sbatch"
    path.write_text(script)
    done = subprocess.run(["sbatch", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InputError(f"sbatch refused {path}: {done.stderr.strip()}")
    return done.stdout.strip()


def require_mpirun() -> None:
    if shutil.which("mpirun") is None:
        raise InputError("mpirun not found; install Open MPI (make setup) or run with --ranks-per-node 1")
