"""The system description: read from /proc and /sys (fake trees here), unknown stays unknown."""
import json
import os
import subprocess
import sys

import psutil
import pytest

from harness.sysinfo import (MLPERF_SYSTEM_FIELDS, UNKNOWN, Identity, Sources, cpu_slug, default_system_name,
                             describe_cpu, describe_system, identity_from_environment)
from reference_model.errors import InputError

SPR_FLAGS = "fpu sse2 avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"
SOFTWARE = {"python": "3", "tensorflow": "2", "keras": "3", "onednn_enabled": True, "TF_ENABLE_ONEDNN_OPTS": "unset",
            "tensorflow_gpus_visible": 0, "horovod": "0.28.1", "horovod_mpi_built": True, "mpi": "Open MPI",
            "mpi4py": "4", "numpy": "2", "mlperf_logging": "4", "mlcommons_loadgen": "6"}


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_xeon(root, sockets=2, cores=2, threads=2):
    """A Sapphire Rapids node: `sockets` x `cores` x `threads`, one NUMA node per socket."""
    blocks = []
    cpu = 0
    for package in range(sockets):
        for thread in range(threads):
            for core in range(cores):
                blocks.append(f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
                              f"model name\t: Intel(R) Xeon(R) Platinum 8480+\nstepping\t: 8\ncpu MHz\t\t: 2000.000\n"
                              f"flags\t\t: {SPR_FLAGS}\n")
                base = root / f"sys/devices/system/cpu/cpu{cpu}"
                _write(base / "topology/physical_package_id", f"{package}\n")
                _write(base / "topology/core_id", f"{core}\n")
                _write(base / "topology/die_id", "0\n")
                sibling = f"{package * cores + core},{sockets * cores + package * cores + core}"
                for index, (level, kind, size, shared) in enumerate([
                        (1, "Data", "48K", sibling), (1, "Instruction", "32K", sibling),
                        (2, "Unified", "2048K", sibling), (3, "Unified", "107520K", f"package{package}")]):
                    cache = base / f"cache/index{index}"
                    _write(cache / "level", f"{level}\n")
                    _write(cache / "type", f"{kind}\n")
                    _write(cache / "size", f"{size}\n")
                    _write(cache / "shared_cpu_list", f"{shared}\n")
                cpu += 1
    _write(root / "proc/cpuinfo", "\n".join(blocks) + "\n")
    _write(root / "sys/devices/system/cpu/cpu0/cpufreq/base_frequency", "2000000\n")
    _write(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3800000\n")
    for node in range(sockets):
        _write(root / f"sys/devices/system/node/node{node}/cpulist", f"{node * cores}-{node * cores + cores - 1}\n")
        _write(root / f"sys/devices/system/node/node{node}/meminfo", f"Node {node} MemTotal:  1048576 kB\n")
    _write(root / "sys/class/infiniband/mlx5_0/ports/1/rate", "200 Gb/sec (4X HDR)\n")
    _write(root / "etc/os-release", 'PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n')
    return Sources(proc=root / "proc", sys=root / "sys", os_release=root / "etc/os-release")


def test_cpu_from_proc_and_sys(tmp_path):
    cpu = describe_cpu(fake_xeon(tmp_path))
    assert cpu["microarchitecture"] == "Sapphire Rapids"
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"], cpu["logical_cpus"]) == (2, 2, 2, 8)
    assert cpu["isa"]["amx_bf16"] and cpu["isa"]["avx512_vnni"] and not cpu["isa"]["sve"]
    assert cpu["frequency_mhz"] == {"base": 2000, "max": 3800, "min": UNKNOWN, "current": 2000}
    caches = {c["name"]: (c["size_kib"], c["instances"]) for c in cpu["caches"]}
    assert caches == {"L1d": (48, 4), "L1i": (32, 4), "L2": (2048, 4), "L3": (107520, 2)}
    assert [n["memory_bytes"] for n in cpu["numa_nodes"]] == [2 ** 30, 2 ** 30]
    assert cpu["virtualised"] is False


def test_mlperf_fields(tmp_path):
    description = describe_system(Identity(submitter="CERN", division="open", status="onprem"),
                                  nodes=256, sources=fake_xeon(tmp_path), software=SOFTWARE)
    assert set(MLPERF_SYSTEM_FIELDS) <= set(description)
    assert description["status"] == "Available on-premise"
    assert (description["number_of_nodes"], description["host_processors_per_node"],
            description["host_processor_core_count"], description["host_processor_vcpu_count"]) == (256, 2, 2, 4)
    assert description["host_processor_frequency"] == "base 2000 MHz, max 3800 MHz"
    assert description["interconnect"] == ["mlx5_0 port 1: InfiniBand 200 Gb/sec (4X HDR)"]
    assert description["operating_system"].startswith("Rocky Linux 9.3")
    assert description["framework"] == "TensorFlow 2 (oneDNN on), Horovod 0.28.1"
    assert description["accelerators_per_node"] == 0 and description["accelerator_model_name"] == "N/A"


def test_unreadable_machine_is_unknown_not_guessed(tmp_path):
    cpu = describe_cpu(Sources(proc=tmp_path / "proc", sys=tmp_path / "sys", os_release=tmp_path / "none"))
    for key in ("model_name", "microarchitecture", "sockets", "cores_per_socket", "isa", "caches", "numa_nodes"):
        assert cpu[key] == UNKNOWN, key
    assert cpu["frequency_mhz"] == {"base": UNKNOWN, "max": UNKNOWN, "min": UNKNOWN, "current": UNKNOWN}


def test_unlisted_cpu_model_is_unknown(tmp_path):
    _write(tmp_path / "proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
                                      "model\t\t: 999\nmodel name\t: Future Xeon\nflags\t\t: avx2\n")
    cpu = describe_cpu(Sources(proc=tmp_path / "proc", sys=tmp_path / "sys"))
    assert cpu["microarchitecture"] == UNKNOWN and cpu["model"] == 999


def test_arm_and_cascade_lake(tmp_path):
    _write(tmp_path / "arm/cpuinfo", "processor\t: 0\nFeatures\t: fp asimd sve sve2 bf16 i8mm\n"
                                     "CPU implementer\t: 0x41\nCPU part\t: 0xd4f\n")
    arm = describe_cpu(Sources(proc=tmp_path / "arm", sys=tmp_path / "sys"))
    assert arm["microarchitecture"] == "Neoverse V2" and arm["isa"]["sve2"] and arm["isa"]["i8mm"]
    _write(tmp_path / "clx/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
                                     "model\t\t: 85\nstepping\t: 7\nflags\t\t: avx512f avx512_vnni\n")
    assert describe_cpu(Sources(proc=tmp_path / "clx", sys=tmp_path / "sys"))["microarchitecture"] == "Cascade Lake"


def test_system_names(monkeypatch):
    assert cpu_slug("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz") == "intel-xeon-platinum-8380"
    assert cpu_slug("AMD EPYC 9654 96-Core Processor") == "amd-epyc-9654"
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "perlmutter")
    assert default_system_name("AMD EPYC 7763 64-Core Processor") == "perlmutter_amd-epyc-7763"
    assert default_system_name("AMD EPYC 7763 64-Core Processor", "Zen 3") == "perlmutter_amd-epyc-7763"
    assert default_system_name("AMD EPYC", "Zen 4") == "perlmutter_amd-epyc-zen-4"
    assert default_system_name("AMD EPYC", "Zen 5") != default_system_name("AMD EPYC", "Zen 4")
    assert default_system_name("AMD EPYC", UNKNOWN) == "perlmutter_amd-epyc"


def test_identity_flags_environment_defaults(monkeypatch):
    monkeypatch.setenv("HARNESS_SUBMITTER", "CERN")
    monkeypatch.setenv("HARNESS_DIVISION", "open")
    identity = identity_from_environment(division="closed")
    assert (identity.submitter, identity.division, identity.status) == ("CERN", "closed", "research")
    with pytest.raises(InputError, match="division"):
        Identity(division="secret")
    with pytest.raises(InputError, match="system name"):
        Identity(system_name="../escape")


def test_this_machine_matches_psutil():
    cpu = describe_cpu()
    assert cpu["logical_cpus"] == psutil.cpu_count(logical=True)
    assert cpu["physical_cores"] == psutil.cpu_count(logical=False)


def test_cli_reports_onednn_as_tensorflow_runs_it(tmp_path):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "HARNESS_SUBMITTER": "tests"}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "sysinfo", "--json", "--system-name", "box"],
                          capture_output=True, text=True, env=env, check=True, cwd=tmp_path)
    description = json.loads(done.stdout)
    assert description["software"]["onednn_enabled"] is False
    assert description["software"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert description["system_name"] == "box" and description["submitter"] == "tests"
    assert set(MLPERF_SYSTEM_FIELDS) <= set(description)
