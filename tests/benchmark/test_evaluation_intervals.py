"""Time to accuracy in evaluation intervals (`--eval-every-samples K`): the trainer cuts its epochs
at K samples (whole global batches), each interval drawn from a fresh shuffle of the training set
as the reference convergence runs train, evaluates after each, and keeps `epochs` and the warm-up
in passes over the training set; the log says each of its epochs is an interval."""
from benchmark import log_keys as keys
from benchmark.distributed import Communicator
from benchmark.trainer import TrainConfig, train
from benchmark.vocabulary import EPOCH_TIME, FLOAT32, TTA
from tests.benchmark.test_divergence import RecordingLogger


def config(**overrides) -> TrainConfig:
    return TrainConfig(**{"benchmark": "3dgan", "mode": TTA, "data": ".", "checkpoint_dir": ".", "epochs": 30,
                          **overrides})


def test_without_intervals_an_epoch_is_a_pass_or_its_cut():
    assert config().schedule(global_batch=8, data_epoch_steps=18_281) == (18_281, 30)
    assert config(max_steps_per_epoch=100).schedule(8, 18_281) == (100, 30)


def test_an_interval_is_whole_global_batches_and_the_budget_stays_in_passes():
    assert config(eval_every_samples=5_000).schedule(8, 18_281) == (625, -(-30 * 18_281 // 625))
    assert config(eval_every_samples=5_000).schedule(512, 285) == (10, 855)  # 5,120 samples, 30 x 285 steps
    assert config(eval_every_samples=5_000, max_steps_per_epoch=100).schedule(8, 18_281) == (100, 30)
    assert config(eval_every_samples=5_000, mode=EPOCH_TIME).schedule(8, 18_281) == (18_281, 30), \
        "epoch time never evaluates"


def test_the_warm_up_in_epochs_is_passes_over_the_training_set_however_epochs_are_cut():
    assert config(warmup_epochs=5, eval_every_samples=5_000).warmup_steps(8, data_epoch_steps=18_281) == 5 * 18_281
    assert config(warmup_samples=5_000).warmup_steps(512, data_epoch_steps=285) == 10


def test_a_run_in_intervals_evaluates_after_each_and_logs_what_its_epochs_are(fixed_data_dir, tmp_path):
    from reference_model import data, pipeline

    run = config(data=fixed_data_dir, checkpoint_dir=tmp_path / "state", epochs=1, per_rank_batch=8, smoke=True,
                 max_steps_per_epoch=4, warmup_epochs=1, eval_every_samples=10, precision=FLOAT32,
                 stop_at_target=False)
    logger = RecordingLogger()
    result = train(run, Communicator(), logger)
    events = {key: (value, metadata) for key, value, metadata in logger.events}
    assert [e.samples for e in result.epochs] == [16, 16], "10 samples round up to 2 steps of 8; 4 steps = 2 intervals"
    assert all(e.evaluated for e in result.epochs)
    assert sum(key == keys.mlperf.EVAL_ACCURACY for key, _, _ in logger.events) == 2
    full = pipeline.steps_per_epoch(data.split_files(data.list_files(fixed_data_dir), run.train_fraction)[0], 8, 1)
    assert events[keys.EVAL_INTERVAL][0] == 16
    assert events[keys.EVAL_INTERVAL][1]["training_set_samples"] == full * 8
    assert events[keys.mlperf.OPT_LR_WARMUP_STEPS][0] == full, "one pass over the training set, not one interval"


def test_a_run_of_epochs_logs_no_interval_and_reports_its_progress(fixed_data_dir, tmp_path, capsys):
    run = config(data=fixed_data_dir, checkpoint_dir=tmp_path / "state", epochs=1, per_rank_batch=8, smoke=True,
                 max_steps_per_epoch=2, warmup_epochs=0, eval_every_samples=None, precision=FLOAT32,
                 stop_at_target=False)
    logger = RecordingLogger()
    result = train(run, Communicator(), logger)
    assert len(result.epochs) == 1 and result.epochs[0].evaluated
    assert keys.EVAL_INTERVAL not in {key for key, _, _ in logger.events}
    assert "[rank 0] epoch 1: 16/16 samples (100.0%)" in capsys.readouterr().err, "an epoch reports its progress"
