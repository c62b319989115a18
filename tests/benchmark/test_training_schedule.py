"""A time-to-accuracy run with the recipe study's schedule (`--lr-decay`, `--ema-horizon-samples`):
the rate follows the cosine in samples, the quality gate judges the generator's moving average
(and an exported generator is that average), and the log says both (a run without them logs
neither: tests/benchmark/test_data_identity.py)."""
from functools import partial

import pytest

from benchmark import log_keys as keys
from benchmark import quality
from benchmark.distributed import Communicator
from benchmark.recipe import LearningRateDecay
from benchmark.trainer import TrainConfig, train
from benchmark.vocabulary import FLOAT32, TTA
from reference_model.data import list_files, split_files
from reference_model.specs import get_spec
from tests.benchmark.test_divergence import RecordingLogger


def test_judging_a_moving_average_needs_one():
    with pytest.raises(ValueError, match="needs ema_decay"):
        TrainConfig(benchmark="3dgan", mode=TTA, data=".", checkpoint_dir=".", judge_moving_average=True)


def test_the_gate_judges_the_moving_average_under_the_decayed_rate(fixed_data_dir, tmp_path):
    from reference_model.checkpoint import load_generator

    run = TrainConfig(benchmark="3dgan", mode=TTA, data=fixed_data_dir, checkpoint_dir=tmp_path / "state",
                      epochs=1, per_rank_batch=8, smoke=True, max_steps_per_epoch=2, warmup_epochs=0,
                      precision=FLOAT32, stop_at_target=False, lr_decay=LearningRateDecay(0, 16, 0.1),
                      ema_decay=0.5, judge_moving_average=True, export_generator=tmp_path / "g.weights.h5")
    spec = get_spec("3dgan")
    thresholds = quality.load_thresholds("3dgan", smoke=True)
    reference = quality.load_evaluation_showers(split_files(list_files(fixed_data_dir), run.train_fraction)[1],
                                                thresholds)
    seen = {}

    def judge(generator):
        return quality.evaluate_generator(partial(generator, training=False), spec, reference, thresholds,
                                          seed=run.seed).objective

    def on_evaluation(epoch, samples, seconds, report, gan):
        seen.update(judged=report.objective, average=judge(gan.ema_generator()), raw=judge(gan.generator),
                    rate=float(gan.g_optimizer.learning_rate.numpy()))

    logger = RecordingLogger()
    train(run, Communicator(), logger, on_evaluation)
    assert seen["judged"] == pytest.approx(seen["average"], rel=1e-6)
    assert seen["average"] != pytest.approx(seen["raw"], rel=1e-6), "two steps apart, average and weights differ"
    # the second step's rate: the cosine at 8 of 16 samples, halfway from 1 to 0.1 of the peak
    assert seen["rate"] == pytest.approx(0.001 * 0.55, rel=1e-5)
    _, exported = load_generator(tmp_path / "g.weights.h5")
    assert judge(exported) == pytest.approx(seen["average"], rel=1e-5)
    events = {key: (value, metadata) for key, value, metadata in logger.events}
    assert events[keys.mlperf.OPT_LR_DECAY_SCHEDULE] == (
        "cosine", {"start_samples": 0, "end_samples": 16, "final_factor": 0.1})
    assert events[keys.mlperf.OPT_END_LR][0] == pytest.approx(0.0001)
    assert events[keys.MOVING_AVERAGE][0] == 16, "per-step decay 0.5 at global batch 8: about 16 samples"

