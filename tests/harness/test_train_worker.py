"""A training rank: what rank 0 writes before it trains."""
import json
import socket

import pytest

from benchmark.distributed import Communicator
from harness.data_default import TrainingData
from harness.run_request import RunRequest
from harness.train_launch import worker_arguments
from harness.train_worker import run_worker, train_config


class Trained(Exception):
    """Raised by the stand-in trainer: the test ends where training would start."""


def worker_request(tmp_path, system: str, *flags: str) -> RunRequest:
    """The request a rank rebuilds from the command line `harness run` gives it."""
    request = RunRequest.from_argv(["--mode", "epoch-time", "--results", str(tmp_path), *flags])
    argv = worker_arguments(request, system, TrainingData(tmp_path / "data", None),
                            tmp_path / "r.txt", tmp_path / "r.json", tmp_path / "ckpt")
    return RunRequest.from_argv(argv[4:])


def test_rank0_describes_the_node_it_runs_on_before_it_trains(tmp_path, monkeypatch):
    """The launcher may run elsewhere (mpirun from a login node), so rank 0 writes the system
    description from its own node, before the first step."""
    described = tmp_path / "systems" / "cluster_skx.json"

    def train(*_):
        assert described.exists(), "described before training starts"
        raise Trained

    monkeypatch.setattr("benchmark.distributed.init_communicator", Communicator)
    monkeypatch.setattr("benchmark.trainer.train", train)
    with pytest.raises(Trained):
        run_worker(worker_request(tmp_path, "cluster_skx", "--nodes", "2"))
    description = json.loads(described.read_text())
    assert description["system_name"] == "cluster_skx" and description["number_of_nodes"] == 2
    assert description["hostname"] == socket.gethostname()


def test_rank0_records_the_cores_behind_its_cpus_in_the_summary(tmp_path, monkeypatch):
    from benchmark.trainer import TrainResult

    done = TrainResult(status="success", mode="epoch-time", benchmark="3dgan", ranks=1, per_rank_batch=8,
                       global_batch=8, precision="float32", seconds=1.0, samples=8)
    monkeypatch.setattr("benchmark.distributed.init_communicator", Communicator)
    monkeypatch.setattr("benchmark.trainer.train", lambda *_: done)
    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0, 1]])  # one core, two hardware threads
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})
    monkeypatch.setenv("HARNESS_CPUS_PER_RANK", "2")
    assert run_worker(worker_request(tmp_path, "sys_a")) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["rank0_cpus"] == {"host": socket.gethostname(), "logical_cpus": 2, "physical_cores": 1}
    assert summary["threads"]["intra_op"] == 1


@pytest.mark.parametrize("environment, threads", [
    ({"HARNESS_CPUS_PER_RANK": "4"}, 2),  # from the launcher: one per core behind the rank's 4 CPUs
    ({"HARNESS_CPUS_PER_RANK": "4", "HARNESS_INTRA_OP_THREADS": "3"}, 3),  # --intra-op-threads given
    ({}, 0),  # no launcher: TensorFlow's default
])
def test_a_rank_sizes_its_intra_op_pool_on_its_node(tmp_path, monkeypatch, environment, threads):
    monkeypatch.setattr("harness.launch.core_groups", lambda: [[0, 4], [1, 5]])
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1, 4, 5})
    for name in ("HARNESS_CPUS_PER_RANK", "HARNESS_INTRA_OP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert train_config(worker_request(tmp_path, "sys_a")).intra_op_threads == threads
