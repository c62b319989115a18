"""How a run reaches its ranks: a single pinned process, `mpirun`, `srun` inside an allocation,
or an sbatch script outside one. Every path can print exactly what it would run (`--dry-run`).

Cores per rank come from where the ranks run, never from the machine that writes the job: the
host file's slots (mpirun), SLURM_CPUS_ON_NODE inside an allocation (srun), or an explicit
`--cores-per-rank`. An sbatch script written on a login node leaves the count to the compute
node (the `harness run --launcher srun` it starts takes it there). The system too is described
by rank 0 on its own node; where that is not this machine (a host file from a login node) the
system's name must be given, since this machine's CPU would name it wrongly.

Ranks are pinned to their cores when they fit, as the source slides did (4 ranks of 12 cores on
48-core 2-socket nodes, one per NUMA domain); they share cores unpinned only when asked
(--oversubscribe, for more cores per rank than a node has) or when there are more ranks than
cores, and the result records it.

The other defaults are the slides' tuned settings (KMP_BLOCKTIME=1, compact affinity,
inter-op 2, a 128 MiB Horovod fusion buffer); every one is a flag. Two more keep the
communication from competing with the compute threads on a rank's own cores: Horovod's
background thread cycles every 10 ms instead of 1 ms (a step makes four small allreduce rounds
a second or more apart, so 10 ms of latency is nothing) and MPI yields the core while it waits
(mpi_yield_when_idle). On 2 ranks x 1 core they raised the weak-scaling efficiency from 0.73 to
0.93 (docs/training-performance.md).
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import psutil

from reference_model.errors import InputError

LAUNCHERS = ("auto", "local", "mpirun", "srun", "slurm")
HOROVOD_FUSION_THRESHOLD = 134217728  # 128 MiB, from the slides' 256-node run
HOROVOD_CYCLE_TIME_MS = 10  # Horovod's background-thread cycle (its default is 1 ms)
HOSTFILE_SLOT_KEYS = ("slots", "max_slots", "max-slots")
# The caller's variables mpirun passes on to ranks on other hosts (srun passes on everything): how
# to find the suite, and the submission identity that rank 0 writes into the log and the system.
FORWARDED_VARIABLES = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH",
                       "HARNESS_SUBMITTER", "HARNESS_DIVISION", "HARNESS_STATUS", "HARNESS_SYSTEM_NAME")


@dataclass
class LaunchPlan:
    """The shape of the job and the settings every rank gets."""

    nodes: int = 1
    ranks_per_node: int = 1
    cores_per_rank: Optional[int] = None  # default: the node's cores / ranks per node
    intra_op_threads: Optional[int] = None  # default: one per core behind the rank (intra_op_threads_here)
    inter_op_threads: int = 2
    kmp_blocktime: int = 1
    kmp_affinity: str = "granularity=fine,compact,1,0"
    fusion_threshold: int = HOROVOD_FUSION_THRESHOLD
    hostfile: Optional[Path] = None
    oversubscribe: bool = False  # let ranks that do not fit their cores share them, unpinned
    partition: Optional[str] = None
    account: Optional[str] = None
    time_limit: str = "02:00:00"
    job_name: str = "3dgan-benchmark"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def ranks(self) -> int:
        return self.nodes * self.ranks_per_node

    def environment(self, cores_per_rank: int) -> dict[str, str]:
        """The variables every rank gets, one rank or many, whatever the launcher."""
        env = {
            "OMP_NUM_THREADS": str(self.intra_op_threads or cores_per_rank),
            "KMP_BLOCKTIME": str(self.kmp_blocktime),
            "KMP_AFFINITY": self.kmp_affinity,
            "HOROVOD_FUSION_THRESHOLD": str(self.fusion_threshold),
            "HOROVOD_CYCLE_TIME": str(HOROVOD_CYCLE_TIME_MS),
            "OMPI_MCA_mpi_yield_when_idle": "1",
            "HARNESS_CPUS_PER_RANK": str(cores_per_rank),
            "HARNESS_INTER_OP_THREADS": str(self.inter_op_threads),
            "HARNESS_NODES": str(self.nodes),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        if self.intra_op_threads:
            env["HARNESS_INTRA_OP_THREADS"] = str(self.intra_op_threads)
        env.update(self.extra_env)
        return env


@dataclass(frozen=True)
class Placement:
    """Cores behind each rank, where that number came from, and whether ranks are pinned."""

    cores_per_rank: Optional[int]  # None: taken on the compute node at run time (sbatch script)
    cores_per_node: Optional[int]  # None: not known where the job is written
    source: str
    oversubscribed: bool = False
    rank0_host: Optional[str] = None  # the host rank 0 runs on when it is not this machine

    @property
    def binding(self) -> str:
        return "none" if self.oversubscribed else "cores"

    def describe(self) -> str:
        cores = self.cores_per_rank if self.cores_per_rank is not None else "set on the compute node"
        state = "OVERSUBSCRIBED, unpinned" if self.oversubscribed else "pinned to cores"
        return f"{cores} core(s) per rank ({self.source}), {state}"

    def record(self, launcher: str, plan: LaunchPlan) -> dict:
        """What the result stores about its launch."""
        return {"launcher": launcher, "cores_per_rank": self.cores_per_rank,
                "cores_per_node": self.cores_per_node, "cores_source": self.source,
                "binding": self.binding, "oversubscribed": self.oversubscribed,
                "intra_op_threads": plan.intra_op_threads,  # None: one per core behind the rank, on its node
                "inter_op_threads": plan.inter_op_threads}


def in_slurm_allocation() -> bool:
    return "SLURM_JOB_ID" in os.environ


def choose_launcher(requested: str, ranks: int, nodes: int = 1, hostfile: Optional[Path] = None) -> str:
    """`auto`: srun inside a Slurm allocation, mpirun with a host file, an sbatch script for
    several nodes from a login node; on one node, a single process or mpirun."""
    if requested != "auto":
        return requested
    if in_slurm_allocation() and ranks > 1:
        return "srun"
    if hostfile:
        return "mpirun"
    if nodes > 1:
        if shutil.which("sbatch"):
            return "slurm"
        raise InputError(f"--nodes {nodes}: nothing here reaches {nodes} nodes; add --hostfile FILE "
                         "(mpirun), run inside a Slurm allocation (srun), or add --launcher slurm "
                         "for an sbatch script")
    return "local" if ranks == 1 else "mpirun"


def check_reach(launcher: str, plan: LaunchPlan) -> None:
    """Refuse a launch that would quietly put every rank on this node, or fewer ranks than asked."""
    if launcher == "local" and plan.ranks > 1:
        raise InputError(f"--launcher local runs one rank, {plan.ranks} were asked for; "
                         "use --launcher mpirun (or auto)")
    if launcher == "mpirun" and plan.nodes > 1 and not plan.hostfile and not in_slurm_allocation():
        raise InputError(f"--nodes {plan.nodes} with mpirun needs --hostfile FILE listing the nodes "
                         "(or a Slurm allocation); without one every rank would run on this node")
    allocated = os.environ.get("SLURM_JOB_NUM_NODES")
    if launcher in ("srun", "mpirun") and in_slurm_allocation() and allocated and not plan.hostfile \
            and plan.nodes > int(allocated):
        raise InputError(f"--nodes {plan.nodes}, but this Slurm allocation has {allocated} node(s); "
                         "lower --nodes or allocate more")


def this_machine() -> set[str]:
    """The names and addresses this machine answers to: its host name (also short), localhost,
    and its interfaces' addresses. No name lookups (not even `socket.getfqdn`): a cluster's
    name service may be slow or absent from here."""
    name = socket.gethostname()
    names = {"localhost", "127.0.0.1", "::1", name, name.split(".")[0]}
    for addresses in psutil.net_if_addrs().values():
        names |= {a.address.split("%")[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6)}
    return names


def rank0_host(plan: LaunchPlan, launcher: str) -> Optional[str]:
    """The host rank 0 runs on when it is not this machine (the first host of an mpirun host file
    that does not name this one), else None: rank 0 runs here."""
    if launcher != "mpirun" or not plan.hostfile:
        return None
    first = next(iter(read_hostfile(plan.hostfile)))
    try:
        spellings = {str(ipaddress.ip_address(first))}  # one spelling per address
    except ValueError:
        spellings = {first, first.split(".")[0]}
    return None if spellings & this_machine() else first


# -- cores per node and per rank --------------------------------------------------------------
def read_hostfile(path: Path) -> dict[str, Optional[int]]:
    """Open MPI host file: `host [slots=N] [max_slots=M]` per line, `#` comments; a host listed
    twice adds its slots. Returns slots per host (None where a line gives none)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise InputError(f"--hostfile {path}: cannot read it ({err.strerror})") from None
    hosts: dict[str, Optional[int]] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        host, slots = fields[0], None
        for item in fields[1:]:
            key, _, value = item.partition("=")
            if key not in HOSTFILE_SLOT_KEYS or not re.fullmatch(r"[1-9][0-9]*", value):
                raise InputError(f"--hostfile {path} line {number}: {item!r} is not slots=N; "
                                 "write lines as `host slots=N`")
            if key == "slots":
                slots = int(value)
        if host in hosts and hosts[host] is not None and slots is not None:
            slots += hosts[host]
        hosts[host] = slots
    if not hosts:
        raise InputError(f"--hostfile {path}: no hosts in it; write one `host slots=N` line per node")
    return hosts


def hostfile_cores(path: Path, nodes: int) -> tuple[Optional[int], str]:
    """Slots per node of the host file (None if it gives none), refusing too few hosts or unlike ones."""
    hosts = read_hostfile(path)
    if len(hosts) < nodes:
        raise InputError(f"--hostfile {path} lists {len(hosts)} host(s), --nodes is {nodes}; "
                         "add hosts or lower --nodes")
    used = list(hosts.items())[:nodes]
    slots = {s for _, s in used}
    if slots == {None}:
        return None, f"host file {path}: no slots given"
    if None in slots or len(slots) > 1:
        listing = ", ".join(f"{h} slots={s}" for h, s in used)
        raise InputError(f"--hostfile {path}: the nodes differ ({listing}); give every host the same "
                         "slots=N, or pass --cores-per-rank")
    count = slots.pop()
    return count, f"host file {path}: slots={count}"


def physical_cores() -> int:
    """Physical cores this process may run on."""
    return len(core_groups()) or os.cpu_count() or 1


def core_groups() -> list[list[int]]:
    """The logical CPUs this process may use, grouped by physical core, in CPU order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for cpu in sorted(os.sched_getaffinity(0)):
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            key = ((topology / "physical_package_id").read_text().strip(),
                   (topology / "core_id").read_text().strip())
        except OSError:
            key = ("cpu", str(cpu))
        groups.setdefault(key, []).append(cpu)
    return list(groups.values())


def cpus_of_this_rank() -> dict:
    """What this process was given, read where it runs: its host, logical CPUs and the physical
    cores they cover. A launcher counts what its scheduler calls CPUs (hardware threads, where
    Slurm counts them so); this says how many cores were behind them."""
    return {"host": socket.gethostname(), "logical_cpus": len(os.sched_getaffinity(0)),
            "physical_cores": len(core_groups())}


def intra_op_threads_here(cpus_per_rank: int) -> int:
    """Intra-op threads for this rank, given `cpus_per_rank` CPUs by its launcher: one per physical
    core behind them, read on the node the rank runs on. Slurm counts hardware threads as CPUs on
    many clusters, so a rank's CPUs can be half as many cores; the reference ran one thread per
    core on 2-way SMT nodes (intra-op 11 and 24 on 24-core Xeon 8160 sockets, 4 and 2 ranks per
    node). Without SMT siblings in the rank's CPUs this is `cpus_per_rank`."""
    cores = core_groups()
    if len(cores) < len(os.sched_getaffinity(0)):  # the rank's CPUs include hardware threads of one core
        return max(1, min(cpus_per_rank, len(cores)))
    return cpus_per_rank


def first_cores(count: int) -> set[int]:
    """The logical CPUs of the first `count` cores: what `--bind-to core` gives rank 0."""
    return {cpu for group in core_groups()[:count] for cpu in group}


def node_cores(plan: LaunchPlan, launcher: str) -> tuple[Optional[int], str]:
    """Cores of a node the ranks run on, and where that number came from (None: unknown here)."""
    if launcher == "slurm":
        return None, f"SLURM_CPUS_ON_NODE / {plan.ranks_per_node} ranks per node on the compute node"
    if launcher == "mpirun" and plan.hostfile:
        return hostfile_cores(plan.hostfile, plan.nodes)
    if launcher in ("srun", "mpirun") and "SLURM_CPUS_ON_NODE" in os.environ:
        value = os.environ["SLURM_CPUS_ON_NODE"]
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"SLURM_CPUS_ON_NODE={value!r} is not a CPU count; pass --cores-per-rank")
        return int(value), f"SLURM_CPUS_ON_NODE={value}"
    if launcher == "srun":
        return None, "srun outside an allocation"
    return physical_cores(), f"this node: {physical_cores()} physical cores"


def place(plan: LaunchPlan, launcher: str) -> Placement:
    """Cores per rank and binding for `plan` under `launcher`. Ranks that fit are pinned; more
    cores per rank than a node has are refused unless --oversubscribe allows sharing; more ranks
    than cores share them unavoidably. Either way the placement says so."""
    per_node, where = node_cores(plan, launcher)
    remote = rank0_host(plan, launcher)
    if plan.cores_per_rank:
        needed = plan.ranks_per_node * plan.cores_per_rank
        if per_node is not None and needed > per_node and not plan.oversubscribe:
            raise InputError(f"{plan.ranks_per_node} rank(s) per node x {plan.cores_per_rank} cores need "
                             f"{needed} cores, a node has {per_node} ({where}); lower --cores-per-rank "
                             "or --ranks-per-node, or add --oversubscribe")
        return Placement(plan.cores_per_rank, per_node, f"--cores-per-rank {plan.cores_per_rank}",
                         oversubscribed=per_node is not None and needed > per_node, rank0_host=remote)
    if launcher == "slurm":
        return Placement(None, None, where)
    if per_node is None:
        raise InputError(f"cores per rank unknown ({where}); pass --cores-per-rank, or launch "
                         "inside a Slurm allocation or with a host file that gives slots=N")
    return Placement(max(1, per_node // plan.ranks_per_node), per_node,
                     f"{where} / {plan.ranks_per_node} rank(s) per node",
                     oversubscribed=plan.ranks_per_node > per_node,  # more ranks than cores: unavoidable
                     rank0_host=remote)


# -- command lines ----------------------------------------------------------------------------
def local_command(plan: LaunchPlan, worker: list[str], placement: Placement) -> tuple[list[str], dict, Optional[set]]:
    """One rank in a fresh process with exactly the environment and core binding an mpirun rank
    gets, so 1-rank and N-rank runs compare: (command, environment, CPUs to pin to or None)."""
    env = {**os.environ, **plan.environment(placement.cores_per_rank)}
    cpus = None if placement.oversubscribed else first_cores(placement.cores_per_rank)
    return worker, env, cpus


def local_equivalent(plan: LaunchPlan, worker: list[str], placement: Placement,
                     cpus: Optional[set]) -> list[str]:
    """The shell command equivalent to the single pinned process of `local_command` (what
    --dry-run prints and the summary records): its environment, its `taskset`, the worker."""
    env = [f"{k}={v}" for k, v in sorted(plan.environment(placement.cores_per_rank).items())]
    pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    return ["env", *env, *pin, *worker]


def pin_on_start(cpus: Optional[set]) -> Optional[Callable[[], None]]:
    """The `preexec_fn` that pins a child process to `cpus` before it runs (None: unpinned)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextlib.contextmanager
def sigterm_passed_on(children: Sequence[subprocess.Popen]) -> Iterator[None]:
    """While inside, a SIGTERM to this process (a batch system's time limit, the background queue
    stopping) is passed on to `children` (a list that may still grow) instead of ending this
    process: they stop as they would on their own (a rank checkpoints) and this process records
    how they ended. Only the main thread takes signals; elsewhere this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def pass_on(*_) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, pass_on)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def mpirun_command(plan: LaunchPlan, worker: list[str], placement: Placement) -> list[str]:
    """Open MPI command line: ranks mapped per node and pinned to their cores when they fit."""
    cores = placement.cores_per_rank
    cmd = ["mpirun", "-np", str(plan.ranks)]
    if plan.hostfile:
        cmd += ["--hostfile", str(plan.hostfile)]
    if placement.oversubscribed:
        cmd += ["--map-by", f"ppr:{plan.ranks_per_node}:node", "--oversubscribe", "--bind-to", "none"]
    elif plan.nodes > 1 or plan.hostfile:
        cmd += ["--map-by", f"ppr:{plan.ranks_per_node}:node:PE={cores}", "--bind-to", "core"]
    else:
        cmd += ["--map-by", f"slot:PE={cores}", "--bind-to", "core"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    for key, value in sorted(plan.environment(cores).items()):
        cmd += ["-x", f"{key}={value}"]
    for name in FORWARDED_VARIABLES:
        if name in os.environ:
            cmd += ["-x", name]
    return cmd + worker


def srun_command(plan: LaunchPlan, worker: list[str], placement: Placement) -> list[str]:
    cores = placement.cores_per_rank
    env = ",".join(f"{k}={v}" for k, v in sorted(plan.environment(cores).items()))
    binding = ["--overcommit", "--cpu-bind=none"] if placement.oversubscribed else ["--cpu-bind=cores"]
    return ["srun", f"--nodes={plan.nodes}", f"--ntasks-per-node={plan.ranks_per_node}",
            f"--cpus-per-task={cores}", *binding, "--kill-on-bad-exit=1",
            f"--export=ALL,{env}"] + worker


# Seconds before the time limit at which Slurm sends the job's steps SIGTERM: every rank then
# finishes its step, checkpoints and stops, instead of being killed mid-epoch KillWait (30 s by
# default) after the limit's own SIGTERM.
STOP_WARNING_S = 300


def sbatch_script(plan: LaunchPlan, steps: list[list[str]], workdir: Path) -> str:
    """A batch script that runs each `harness` command line of `steps` inside the allocation.

    Nothing in it depends on the machine that writes it: without --cores-per-rank, cores per
    rank are taken on the compute node by the `harness run --launcher srun` each step starts.
    `steps` carry absolute paths; the job's output goes to `workdir` (absolute)."""
    workdir = Path(workdir).resolve()
    lines = ["#!/bin/bash", f"#SBATCH --job-name={plan.job_name}", f"#SBATCH --nodes={plan.nodes}",
             f"#SBATCH --ntasks-per-node={plan.ranks_per_node}"]
    if plan.cores_per_rank:
        lines.append(f"#SBATCH --cpus-per-task={plan.cores_per_rank}")
    lines += [f"#SBATCH --time={plan.time_limit}", f"#SBATCH --signal=TERM@{STOP_WARNING_S}", "#SBATCH --exclusive",
              f"#SBATCH --output={workdir}/%x-%j.out"]
    if plan.partition:
        lines.append(f"#SBATCH --partition={plan.partition}")
    if plan.account:
        lines.append(f"#SBATCH --account={plan.account}")
    if plan.cores_per_rank:
        lines.append(f"# Cores per rank: {plan.cores_per_rank}, from --cores-per-rank.")
    else:
        lines.append(f"# Cores per rank: SLURM_CPUS_ON_NODE / {plan.ranks_per_node} ranks per node, taken on "
                     "the compute node at run time by each `harness run --launcher srun` below.")
    if not plan.intra_op_threads:
        lines.append("# Intra-op threads: one per physical core behind each rank's CPUs, taken by the rank on "
                     "its node.")
    lines += ["set -uo pipefail", f"cd {shlex.quote(str(workdir))}", "status=0"]
    for step in steps:
        lines.append(shlex.join([sys.executable, "-m", "harness.cli", *step]) + " || status=1")
    lines.append("exit $status")
    return "\n".join(lines) + "\n"


def submit(script: str, path: Path) -> str:
    """Write the batch script to `path` and submit it; return sbatch's answer (the job id line)."""
    if shutil.which("sbatch") is None:
        raise InputError("--submit: sbatch not found; run on a Slurm login node or drop --submit "
                         "and submit the printed script yourself")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    done = subprocess.run(["sbatch", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InputError(f"sbatch refused {path}: {done.stderr.strip()}")
    return done.stdout.strip()


def require_mpirun() -> None:
    if shutil.which("mpirun") is None:
        raise InputError("mpirun not found; install Open MPI (make setup) or run with --ranks-per-node 1")
