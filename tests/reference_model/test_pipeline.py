"""The tf.data input pipeline: batch contract, disjoint equal shards, determinism, selection."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from reference_model import data, pipeline, simulator
from reference_model.errors import InputError
from reference_model.showers import ANGLE, FIXED
from tests.conftest import FIXED_DATA


def _epoch(files, benchmark, batch, rank=0, num_ranks=1, seed=0, **kwargs):
    ds = pipeline.make_dataset(files, benchmark, batch, rank=rank, num_ranks=num_ranks, seed=seed, **kwargs)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def _energies(batches):
    return np.concatenate([b["energy"][:, 0] for b in batches]) if batches else np.array([])


# -- the epoch plan (no TensorFlow) ------------------------------------------------------------
@pytest.mark.parametrize("num_ranks", [1, 3, 7, 16])
def test_ranks_get_disjoint_equal_shares(num_ranks):
    index = [(Path(f"f{i}"), np.arange(1000 - 37 * i)) for i in range(10)]
    total = sum(len(sel) for _, sel in index)
    seen = []
    for rank in range(num_ranks):
        plan = pipeline.epoch_plan(index, rank, num_ranks, seed=5)
        events = [(f, int(e)) for f, evs in plan for e in evs]
        assert len(events) == total // num_ranks
        assert all(len(evs) <= pipeline.BLOCK_EVENTS for _, evs in plan)
        seen += events
    assert len(set(seen)) == len(seen) == num_ranks * (total // num_ranks)


def test_each_epoch_permutes_blocks_differently():
    index = [(Path(f"f{i}"), np.arange(500)) for i in range(4)]
    first = [(f, int(e[0])) for f, e in pipeline.epoch_plan(index, 0, 2, seed=1)]
    again = [(f, int(e[0])) for f, e in pipeline.epoch_plan(index, 0, 2, seed=1)]
    other = [(f, int(e[0])) for f, e in pipeline.epoch_plan(index, 0, 2, seed=2)]
    assert first == again and first != other


# -- batches -----------------------------------------------------------------------------------
def test_fixed_batches_follow_the_training_contract(fixed_data_dir):
    files = data.list_files(fixed_data_dir)
    batches = _epoch(files, "3dgan", 16, seed=3)
    assert len(batches) == pipeline.steps_per_epoch(files, 16) == FIXED_DATA["n_events"] // 16
    b = batches[0]
    assert set(b) == {"image", "energy", "ecal"}
    assert b["image"].shape == (16, 25, 25, 25, 1) and b["energy"].shape == (16, 1)
    assert all(v.dtype == np.float32 for v in b.values())
    # Each event is the file's event, preprocessed: find it by its energy.
    showers = data.load_showers(files)
    i = int(np.flatnonzero(showers.energy_gev / 100 == b["energy"][0, 0])[0])
    expected = data.training_arrays(showers.ecal_gev[i:i + 1], showers.energy_gev[i:i + 1], None, FIXED)
    np.testing.assert_array_equal(b["image"][0], expected["image"][0])
    np.testing.assert_allclose(b["ecal"][0], expected["ecal"][0], rtol=1e-6)


def test_angle_batches_follow_the_training_contract(angle_data_dir):
    files = data.list_files(angle_data_dir)
    batches = _epoch(files, "3dgan-angle", 4, seed=1)
    b = batches[0]
    assert set(b) == {"image", "energy", "theta", "ecal"}
    assert b["image"].shape == (4, 51, 51, 25, 1) and b["theta"].shape == (4, 1)
    np.testing.assert_allclose(b["ecal"][:, 0], (b["image"][..., 0] ** (1 / 0.85)).sum(axis=(1, 2, 3)),
                               rtol=1e-3)
    assert np.all((b["theta"] > np.radians(59)) & (b["theta"] < np.radians(121)))


def test_one_epoch_sees_every_event_once_and_shards_are_disjoint(fixed_data_dir):
    files = data.list_files(fixed_data_dir)
    all_energies = data.load_showers(files).energy_gev / 100
    per_rank = []
    for rank in range(3):
        batches = _epoch(files, "3dgan", 8, rank=rank, num_ranks=3, seed=4)
        assert len(batches) == pipeline.steps_per_epoch(files, 8, 3) == (600 // 3) // 8
        per_rank.append(_energies(batches))
    seen = np.concatenate(per_rank)
    assert len(np.unique(seen)) == len(seen) == 3 * 25 * 8
    assert np.isin(seen, all_energies).all()
    one_rank = _energies(_epoch(files, "3dgan", 1, seed=4))
    np.testing.assert_array_equal(np.sort(one_rank), np.sort(all_energies))


def test_same_seed_same_batches_new_seed_new_order(fixed_data_dir):
    files = data.list_files(fixed_data_dir)
    a = _energies(_epoch(files, "3dgan", 25, seed=7))
    b = _energies(_epoch(files, "3dgan", 25, seed=7))
    c = _energies(_epoch(files, "3dgan", 25, seed=8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    two = _energies(_epoch(files, "3dgan", 25, seed=7, epochs=2))
    assert len(two) == 2 * len(a)
    np.testing.assert_array_equal(two[:len(a)], a)
    np.testing.assert_array_equal(np.sort(two[len(a):]), np.sort(a))


def test_single_file_split_ranges_stream(fixed_data_dir):
    train, test = data.split_files(data.list_files(fixed_data_dir)[:1], 0.9)
    assert pipeline.steps_per_epoch(train, 5) == 135 // 5
    assert len(_epoch(train, "3dgan", 5)) == 27
    assert len(data.load_showers(test)) == 15


# -- the angle selection (> 0.2 GeV deposited) -------------------------------------------------
@pytest.fixture(scope="module")
def low_energy_angle_files(tmp_path_factory):
    """Angle events of 2-14 GeV: about half deposit less than 0.2 GeV and are not trained on."""
    directory = tmp_path_factory.mktemp("low_angle")
    return simulator.write_dataset(directory, 40, ANGLE, seed=9, energy_range=(2.0, 14.0),
                                   events_per_file=20, progress=False)


def test_angle_events_below_the_deposit_cut_are_dropped(low_energy_angle_files):
    showers = data.load_showers(low_energy_angle_files)
    keep = showers.ecal_gev.sum(axis=(1, 2, 3)) * 50 > 10
    assert 5 < keep.sum() < 35
    assert pipeline.events_per_rank(low_energy_angle_files) == keep.sum()
    seen = _energies(_epoch(low_energy_angle_files, "3dgan-angle", 1))
    np.testing.assert_allclose(np.sort(seen), np.sort(showers.energy_gev[keep] / 100), rtol=1e-6)


def test_selection_without_a_sum_key_is_computed_from_the_images(tmp_path, low_energy_angle_files):
    copies = []
    for path in low_energy_angle_files:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        with h5py.File(copy, "a") as f:
            del f["sum"]
        copies.append(copy)
    assert pipeline.event_index(copies)[1][0][1].tolist() == pipeline.event_index(low_energy_angle_files)[1][0][1].tolist()


# -- refusals ----------------------------------------------------------------------------------
def test_wrong_geometry_and_too_little_data_are_input_errors(fixed_data_dir, angle_data_dir):
    with pytest.raises(InputError, match="fixed-angle showers but 3dgan-angle"):
        pipeline.make_dataset(data.list_files(fixed_data_dir), "3dgan-angle", 4)
    with pytest.raises(InputError, match="too few training events"):
        pipeline.make_dataset(data.list_files(angle_data_dir), "3dgan-angle", 64, num_ranks=4)
    with pytest.raises(InputError, match="rank 2 of 2"):
        pipeline.make_dataset(data.list_files(fixed_data_dir), "3dgan", 4, rank=2, num_ranks=2)


def test_a_bad_file_met_mid_epoch_is_a_one_line_input_error(tmp_path, fixed_data_dir):
    files = []
    for path in data.list_files(fixed_data_dir)[:2]:
        shutil.copy(path, tmp_path / path.name)
        files.append(tmp_path / path.name)
    with h5py.File(files[1], "a") as f:
        event = f["ECAL"][7]
        event[3, 3, 3] = np.nan
        f["ECAL"][7] = event
    with pytest.raises(InputError, match="NaN or infinite cells") as err:
        with pipeline.input_errors_surfaced():
            _epoch(files, "3dgan", 10)
    assert str(files[1]) in str(err.value) and "\n" not in str(err.value)


def test_a_shuffle_buffer_holds_128_mb_or_what_a_cut_epoch_takes():
    """A rank's epoch cut after a few batches (a campaign interval of many emulated ranks) fills no
    more than it drains: 80 events for 10 steps of 8, not 2,147."""
    assert pipeline.shuffle_buffer_events(FIXED, 8) == (128 << 20) // (4 * 25 ** 3) == 2147
    assert pipeline.shuffle_buffer_events(FIXED, 8, taken_batches=625) == 2147
    assert pipeline.shuffle_buffer_events(FIXED, 8, taken_batches=10) == 80
    assert pipeline.shuffle_buffer_events(ANGLE, 1024) == 1024  # at least a batch
