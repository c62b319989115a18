"""What emulating N ranks in one process costs here: seconds of the first (tracing) and later steps
and the process's peak memory, on random batches (`step`), or two steps of the trainer on a real
training set (`trainer`, which includes its shuffle buffers). Sizes for planning the closed-rule
study's runs (docs/closed-rule-study.md), not timings: pause the campaign for steadier seconds.

Usage: .venv/bin/python scripts/emulation_footprint.py step RANKS
       .venv/bin/python scripts/emulation_footprint.py trainer RANKS DATA_DIR
"""
from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def steps(ranks: int, count: int = 3) -> None:
    import keras
    import numpy as np

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from reference_model.specs import get_spec
    from reference_model.training import ReferenceGAN

    gan = ReferenceGAN(get_spec("3dgan"), seed=1, emulated_ranks=ranks)
    rng = np.random.default_rng(0)
    batches = tuple({"image": rng.random((8, 25, 25, 25, 1), dtype=np.float32),
                     "energy": rng.uniform(1, 5, (8, 1)).astype(np.float32),
                     "ecal": rng.uniform(1, 5, (8, 1)).astype(np.float32)} for _ in range(ranks))
    for i in range(count):
        start = time.monotonic()
        losses = gan.train_step(batches if ranks > 1 else batches[0])
        float(next(iter(losses.values())))  # waits for the step
        print(f"ranks {ranks} step {i}: {time.monotonic() - start:.1f} s, peak {peak_gib():.2f} GiB", flush=True)


def trainer(ranks: int, data: Path) -> None:
    from benchmark.distributed import Communicator
    from benchmark.trainer import TrainConfig, train
    from benchmark.vocabulary import EPOCH_TIME, MIXED_BFLOAT16

    class NullLogger:
        def event(self, *args, **kwargs): ...
        def start(self, *args, **kwargs): ...
        def end(self, *args, **kwargs): ...

    start = time.monotonic()
    with tempfile.TemporaryDirectory() as checkpoints:
        config = TrainConfig(benchmark="3dgan", mode=EPOCH_TIME, data=data, checkpoint_dir=Path(checkpoints),
                             epochs=1, per_rank_batch=8, seed=1, precision=MIXED_BFLOAT16, warmup_epochs=0,
                             max_steps_per_epoch=2, emulated_ranks=ranks)
        result = train(config, Communicator(), NullLogger())
    print(f"ranks {ranks}: {result.samples} samples, {time.monotonic() - start:.0f} s, peak {peak_gib():.1f} GiB")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) >= 3 else None
    if mode not in ("step", "trainer") or (mode == "trainer") != (len(sys.argv) == 4):
        sys.exit(__doc__)
    if sys.argv[1] == "step":
        steps(int(sys.argv[2]))
    else:
        trainer(int(sys.argv[2]), Path(sys.argv[3]))
