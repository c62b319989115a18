"""The distributed layer's pure parts: rank discovery and the warm-up schedule."""
import pytest

from benchmark.distributed import launched_ranks, warmup_learning_rate


def test_launched_ranks_reads_the_launchers_variables(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "1024")  # the batch script sees it too: not a rank
    assert launched_ranks() == 1
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "8")
    assert launched_ranks() == 8
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert launched_ranks() == 2


def test_warmup_ramps_from_base_to_ranks_times_base():
    schedule = warmup_learning_rate(1e-3, 4, warmup_steps=10)
    assert schedule(0) == pytest.approx(1e-3)
    assert schedule(5) == pytest.approx(2.5e-3)
    assert schedule(10) == schedule(100) == pytest.approx(4e-3)
    assert warmup_learning_rate(1e-3, 4, 0)(0) == pytest.approx(4e-3)
