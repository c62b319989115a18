"""Emulated ranks are the arithmetic of real ones: a 2-rank Horovod run and one process emulating
2 ranks (reference_model.training.ReferenceGAN(emulated_ranks=2)), same seed, same per-rank
batches, hold bit-identical weights, optimiser slots and rank-0 BatchNorm statistics after 3
steps, in float32 on one thread per process.

One thread, because oneDNN's multi-threaded reductions order a convolution's sums differently
from run to run, and RMSprop's first steps move every weight by about lr x sign(gradient) x 3.16
whatever the gradient's size, so a gradient component at rounding level that flips sign moves
its weight by 2 x 0.0063 (lr 0.002): with 2 threads per process the two paths differed by up to
0.025 in the generator's dense kernel after one step. On one thread they agree exactly."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI is not installed")]

STEPS, RANKS, BATCH = 3, 2, 4

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from benchmark.distributed import init_communicator
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN, synthetic_batch

    benchmark, out, emulate = sys.argv[1], sys.argv[2], int(sys.argv[3])
    comm = init_communicator()
    gan = ReferenceGAN(get_spec(benchmark), seed=5, learning_rate=0.002, tape_wrapper=comm.tape_wrapper,
                       rank=comm.rank, emulated_ranks=emulate)
    comm.broadcast_variables(gan.variables)
    for step in range({steps}):
        batches = [synthetic_batch(benchmark, {batch}, seed=100 * step + rank) for rank in range({ranks})]
        gan.train_step(batches if emulate > 1 else batches[comm.rank])
    if comm.rank == 0:
        state = (gan.generator.trainable_variables + gan.discriminator.trainable_variables
                 + gan.d_optimizer.variables + gan.g_optimizer.variables + gan.moving_statistics)
        np.savez(out, *[np.asarray(v.numpy(), dtype=np.float64) for v in state])
""")


def _env() -> dict:
    return {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_rmaps_base_oversubscribe": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("benchmark_name", ["3dgan", "3dgan-angle"])
def test_two_horovod_ranks_equal_two_emulated_ranks(tmp_path, benchmark_name):
    script = tmp_path / "step.py"
    script.write_text(SCRIPT.format(steps=STEPS, batch=BATCH, ranks=RANKS))
    real, emulated = tmp_path / "real.npz", tmp_path / "emulated.npz"
    runs = [["mpirun", "-np", str(RANKS), "--oversubscribe", "-x", "OMP_NUM_THREADS", sys.executable, str(script), benchmark_name, str(real), "1"],
            [sys.executable, str(script), benchmark_name, str(emulated), str(RANKS)]]
    for command in runs:
        done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    with np.load(real) as a, np.load(emulated) as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(b[name], a[name], err_msg=name)
