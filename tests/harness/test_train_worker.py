"""A training rank: what rank 0 writes before it trains."""
import json
import socket

import pytest

from benchmark.distributed import Communicator
from harness.data_default import TrainingData
from harness.run_request import RunRequest
from harness.train_launch import worker_arguments
from harness.train_worker import run_worker


class Trained(Exception):
    """Raised by the stand-in trainer: the test ends where training would start."""


def test_rank0_describes_the_node_it_runs_on_before_it_trains(tmp_path, monkeypatch):
    """The launcher may run elsewhere (mpirun from a login node), so rank 0 writes the system
    description from its own node, before the first step."""
    request = RunRequest.from_argv(["--mode", "epoch-time", "--nodes", "2", "--results", str(tmp_path)])
    argv = worker_arguments(request, "cluster_skx", TrainingData(tmp_path / "data", None),
                            tmp_path / "r.txt", tmp_path / "r.json", tmp_path / "ckpt")
    described = tmp_path / "systems" / "cluster_skx.json"

    def train(*_):
        assert described.exists(), "described before training starts"
        raise Trained

    monkeypatch.setattr("benchmark.distributed.init_communicator", Communicator)
    monkeypatch.setattr("benchmark.trainer.train", train)
    with pytest.raises(Trained):
        run_worker(RunRequest.from_argv(argv[4:]))
    description = json.loads(described.read_text())
    assert description["system_name"] == "cluster_skx" and description["number_of_nodes"] == 2
    assert description["hostname"] == socket.gethostname()
