"""The thin distributed layer: everything the trainer needs from an allreduce backend.

Horovod over MPI is the backend (as in the source slides); the trainer only sees
`Communicator`, so another backend (mpi4py, MultiWorkerMirroredStrategy) can replace it
without touching the training loop. Horovod is given the underlying TensorFlow variables
(`v.value`), which is what makes it work with Keras 3.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from benchmark.recipe import LINEAR, peak_learning_rate

# Set for each rank by mpirun or srun (SLURM_STEP_NUM_TASKS only inside an srun step, unlike
# SLURM_NTASKS, which the batch script that launches the ranks also sees).
MPI_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS")


def launched_ranks() -> int:
    """How many ranks the launcher (mpirun, srun) started, 1 outside a parallel launch."""
    for name in MPI_SIZE_VARIABLES:
        if name in os.environ:
            return int(os.environ[name])
    return 1


class Communicator:
    """One process, no communication: the base the distributed backend overrides."""

    rank = 0
    size = 1
    backend = "none"

    def tape_wrapper(self, tape: tf.GradientTape) -> tf.GradientTape:
        return tape

    def broadcast_variables(self, variables: Sequence) -> None:
        del variables

    def allreduce_mean(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def barrier(self) -> None:
        pass

    @property
    def is_root(self) -> bool:
        return self.rank == 0


class HorovodCommunicator(Communicator):
    """Horovod over MPI: DistributedGradientTape, rank-0 broadcast, averaged metrics."""

    backend = "horovod"

    def __init__(self) -> None:
        import horovod.tensorflow as hvd

        hvd.init()
        self._hvd = hvd
        self.rank, self.size = hvd.rank(), hvd.size()

    def tape_wrapper(self, tape: tf.GradientTape) -> tf.GradientTape:
        return self._hvd.DistributedGradientTape(tape)

    def broadcast_variables(self, variables: Sequence) -> None:
        self._hvd.broadcast_variables([getattr(v, "value", v) for v in variables], root_rank=0)

    def allreduce_mean(self, values: np.ndarray) -> np.ndarray:
        tensor = tf.constant(np.asarray(values, dtype=np.float64))
        return self._hvd.allreduce(tensor, op=self._hvd.Average).numpy()

    def barrier(self) -> None:
        self._hvd.join()


def init_communicator() -> Communicator:
    """Horovod when launched with more than one rank, the single-process communicator otherwise."""
    return HorovodCommunicator() if launched_ranks() > 1 else Communicator()


def warmup_learning_rate(base_lr: float, num_ranks: int, warmup_steps: int,
                         scaling: str = LINEAR) -> Callable[[int], float]:
    """The rate at each step: `scaling`'s peak for the ranks (`recipe.peak_learning_rate`; the
    closed division's is linear, Goyal et al.), reached by a linear ramp from `base_lr`."""
    target = peak_learning_rate(base_lr, num_ranks, scaling)

    def schedule(step: int) -> float:
        if warmup_steps <= 0 or step >= warmup_steps:
            return target
        return base_lr + (target - base_lr) * step / warmup_steps

    return schedule
