"""Which data a run trained and was judged on is in its log: a stand-in set by the recipe it was
made from (recorded beside its files), anything else as such; closed time-to-accuracy results
must be on the benchmark's reference data set, as its RCPs and target were measured."""
import shutil

import pytest

from benchmark import log_keys as keys
from benchmark.distributed import Communicator
from benchmark.recipe import reference_data
from benchmark.trainer import TrainConfig, train
from benchmark.vocabulary import FLOAT32, TTA
from reference_model import simulator
from tests.benchmark.test_divergence import RecordingLogger
from tests.conftest import FIXED_DATA


def test_a_stand_in_set_records_the_recipe_it_was_made_from(fixed_data_dir, tmp_path):
    made = FIXED_DATA
    assert simulator.recorded_recipe(fixed_data_dir) == \
        f"events={made['n_events']} geometry=fixed seed={made['seed']} events_per_file={made['events_per_file']}"
    assert simulator.recorded_recipe(fixed_data_dir / "*.h5") is None, "a glob is no recorded set"
    copy = tmp_path / "copy"
    shutil.copytree(fixed_data_dir, copy)
    (copy / simulator.COMPLETE_MARKER).unlink()
    assert simulator.recorded_recipe(copy) is None
    narrow = simulator.write_dataset(tmp_path / "narrow", 20, seed=3, energy_range=(100.0, 200.0), progress=False)
    assert simulator.recorded_recipe(narrow[0].parent).endswith("energy_range=100,200")


def test_the_reference_data_set_is_named_by_its_recipes():
    data = reference_data("3dgan")
    assert data.recipes == ("events=200000 geometry=fixed seed=1001 events_per_file=10000",
                            "events=15000 geometry=fixed seed=2001 events_per_file=10000")


@pytest.mark.parametrize("separate", [True, False])
def test_a_run_logs_its_training_and_held_out_data(fixed_data_dir, tmp_path, separate):
    run = TrainConfig(benchmark="3dgan", mode=TTA, data=fixed_data_dir, checkpoint_dir=tmp_path / "state",
                      eval_data=fixed_data_dir if separate else None, epochs=1, per_rank_batch=8, smoke=True,
                      max_steps_per_epoch=1, warmup_epochs=0, precision=FLOAT32, stop_at_target=False)
    logger = RecordingLogger()
    train(run, Communicator(), logger)
    events = {key: (value, metadata) for key, value, metadata in logger.events}
    recipe = simulator.recorded_recipe(fixed_data_dir)
    assert events[keys.TRAIN_DATA][0] == recipe
    assert events[keys.TRAIN_DATA][1]["files"] == (4 if separate else 3)
    if separate:
        assert events[keys.EVAL_DATA] == (recipe, {"path": str(fixed_data_dir), "files": 4})
    else:
        assert events[keys.EVAL_DATA][0] == f"the held-out split (0.1) of {recipe}"
    assert not set(events) & {keys.mlperf.OPT_LR_DECAY_SCHEDULE, keys.mlperf.OPT_END_LR, keys.MOVING_AVERAGE}, \
        "no rate decay and the generator itself judged (tests/benchmark/test_training_schedule.py)"
