"""A run whose rate diverges stops with a one-line reason (docs/closed-rule-study.md): a non-finite
loss at an epoch's end, or a generator whose showers are (nearly) all empty at an evaluation. The
MLPerf log ends with run_stop aborted and that reason; nothing non-finite is logged."""
import json

import pytest

from benchmark import log_keys as keys
from benchmark.distributed import Communicator
from benchmark.trainer import TrainConfig, train
from benchmark.vocabulary import FLOAT32, TTA
from reference_model.training import ReferenceGAN


class RecordingLogger:
    def __init__(self) -> None:
        self.events: list[tuple[str, object, dict]] = []

    def event(self, key, value=None, metadata=None) -> None:
        self.events.append((key, value, metadata or {}))

    start = end = event


def _run(data, tmp_path, step):
    """Three 2-step epochs of the smoke gate, every step through `step(gan, losses)`."""
    real = ReferenceGAN.train_step

    def patched(self, batch):
        return step(self, real(self, batch))

    config = TrainConfig(benchmark="3dgan", mode=TTA, data=data, checkpoint_dir=tmp_path / "state", epochs=3,
                         per_rank_batch=8, smoke=True, max_steps_per_epoch=2, warmup_epochs=0,
                         eval_every_samples=None, precision=FLOAT32, stop_at_target=False)
    logger = RecordingLogger()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReferenceGAN, "train_step", patched)
        result = train(config, Communicator(), logger)
    [(_, _, stop)] = [e for e in logger.events if e[0] == keys.mlperf.RUN_STOP]
    json.dumps([e[1:] for e in logger.events], allow_nan=False, default=str)  # nothing non-finite was logged
    return result, stop


def test_a_non_finite_loss_stops_the_run_at_the_epochs_end(fixed_data_dir, tmp_path, capsys):
    result, stop = _run(fixed_data_dir, tmp_path, lambda gan, losses: {k: v * float("nan") for k, v in losses.items()})
    assert result.status == "aborted" and not result.epochs
    assert result.reason.startswith("diverged: non-finite ") and "in epoch 1 at 16 samples" in result.reason
    assert stop[keys.mlperf.STATUS] == keys.mlperf.ABORTED and stop["reason"] == result.reason
    assert "diverged" in capsys.readouterr().err


def test_a_collapsed_generator_stops_the_run_at_its_evaluation(fixed_data_dir, tmp_path):
    import tensorflow as tf

    def collapse(gan, losses):
        for variable in gan.generator.trainable_variables:  # every shower exactly empty
            variable.assign(tf.zeros_like(variable))
        return losses

    result, stop = _run(fixed_data_dir, tmp_path, collapse)
    assert len(result.epochs) == 1 and result.status == "aborted"
    assert result.reason.startswith("diverged: 100.0% of the generated showers are empty at 16 samples")
    assert stop["reason"] == result.reason
