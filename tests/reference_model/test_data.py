"""Reading the real CLIC formats: detection, units, splits, preprocessing and one-line errors."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from harness.cli import main as harness_main
from reference_model import data, simulator, transforms
from reference_model.errors import InputError
from reference_model.showers import ANGLE, FIXED
from tests.conftest import ANGLE_DATA, FIXED_DATA


def _write(path, **arrays):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    return path


def _fixed_arrays(n=4, **overrides):
    rng = np.random.default_rng(0)
    ecal = rng.exponential(1e-3, (n, 25, 25, 25)).astype(np.float32)
    target = np.stack([np.full(n, 11.0), np.linspace(10, 400, n)], axis=1).astype(np.float32)
    return {"ECAL": ecal, "target": target} | overrides


def _angle_arrays(n=3, **overrides):
    rng = np.random.default_rng(1)
    ecal = rng.exponential(5e-2, (n, 51, 51, 25)).astype(np.float32)
    return {"ECAL": ecal, "energy": np.linspace(50, 300, n).astype(np.float32),
            "theta": np.radians(np.linspace(62, 118, n)).astype(np.float32)} | overrides


# -- finding files -----------------------------------------------------------------------------
def test_list_files_accepts_a_directory_a_file_a_glob_and_a_list(fixed_data_dir):
    files = data.list_files(fixed_data_dir)
    assert len(files) == FIXED_DATA["n_events"] // FIXED_DATA["events_per_file"]
    assert files == sorted(files)
    assert data.list_files(files[1]) == [files[1]]
    assert data.list_files(str(fixed_data_dir / "EleEscan_*.h5")) == files
    assert data.list_files([files[2], files[0]]) == [files[2], files[0]]


def test_list_files_sorts_lexicographically_as_the_originals(tmp_path):
    for name in ("EleEscan_1_10.h5", "EleEscan_1_2.h5", "EleEscan_1_1.h5"):
        _write(tmp_path / name, **_fixed_arrays(1))
    assert [p.name for p in data.list_files(tmp_path)] == [
        "EleEscan_1_1.h5", "EleEscan_1_10.h5", "EleEscan_1_2.h5"]


@pytest.mark.parametrize("make, problem", [
    (lambda d: d, "holds no .h5 files"),
    (lambda d: d / "missing", "no such file or directory"),
    (lambda d: str(d / "*.h5"), "matches no files"),
])
def test_nothing_to_read_is_an_input_error(tmp_path, make, problem):
    with pytest.raises(InputError, match=problem):
        data.list_files(make(tmp_path))


# -- formats and units -------------------------------------------------------------------------
def test_formats_are_detected(fixed_data_dir, angle_data_dir):
    assert data.detect_format(data.list_files(fixed_data_dir)[0]) == FIXED
    assert data.detect_format(data.list_files(angle_data_dir)[0]) == ANGLE


def test_fixed_files_read_back_exactly_in_gev(fixed_data_dir):
    showers = data.load_showers(fixed_data_dir)
    expected = simulator.simulate(FIXED_DATA["n_events"], FIXED, seed=FIXED_DATA["seed"])
    np.testing.assert_array_equal(showers.ecal_gev, expected.ecal_gev)
    np.testing.assert_array_equal(showers.energy_gev, expected.energy_gev)
    assert showers.theta_rad is None


def test_angle_files_are_divided_by_50_to_gev(angle_data_dir):
    showers = data.load_showers(angle_data_dir)
    expected = simulator.simulate(ANGLE_DATA["n_events"], ANGLE, seed=ANGLE_DATA["seed"])
    np.testing.assert_allclose(showers.ecal_gev, expected.ecal_gev, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(showers.theta_rad, expected.theta_rad)
    with h5py.File(data.list_files(angle_data_dir)[0], "r") as f:
        raw = f["ECAL"][:5]
    np.testing.assert_allclose(showers.ecal_gev[:5], raw / 50, rtol=1e-6)


def test_load_showers_reads_only_what_is_asked(fixed_data_dir):
    files = data.list_files(fixed_data_dir)
    part = data.load_showers(files[1:], max_events=200)
    assert len(part) == 200
    per_file = FIXED_DATA["events_per_file"]
    np.testing.assert_array_equal(part.energy_gev[:per_file], data.read_showers(files[1]).energy_gev)
    np.testing.assert_array_equal(part.energy_gev[per_file:], data.read_showers(files[2], 200 - per_file).energy_gev)


def test_other_keys_are_tolerated_and_mtheta_stands_in_for_theta(tmp_path):
    arrays = _angle_arrays()
    mtheta = arrays.pop("theta")
    path = _write(tmp_path / "a.h5", **arrays, mtheta=mtheta, eta=np.zeros(3), sum=np.ones(3),
                  HCAL=np.zeros((3, 11, 11, 60), np.float32), recoPhi=np.zeros(3))
    showers = data.read_showers(path)
    np.testing.assert_array_equal(showers.theta_rad, mtheta)
    fixed = _write(tmp_path / "f.h5", **_fixed_arrays(), HCAL=np.zeros((4, 5, 5, 60), np.float32))
    assert data.read_showers(fixed).geometry == FIXED


# -- splits ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_files, n_train", [(20, 18), (10, 9), (5, 4), (4, 3), (2, 1)])
def test_split_is_by_sorted_file_order(n_files, n_train):
    files = [f"EleEscan_1_{i:03d}.h5" for i in range(n_files)]
    train, test = data.split_files(files, 0.9)
    assert train == files[:n_train] and test == files[n_train:]


def test_one_file_is_split_by_event(fixed_data_dir):
    only = data.list_files(fixed_data_dir)[0]
    (train,), (test,) = data.split_files([only], 0.9)
    assert (train.start, train.stop, test.start, test.stop) == (0, 135, 135, 150)
    assert len(data.load_showers([train])) == 135 and len(data.load_showers([test])) == 15


def test_bad_train_fraction_is_an_input_error():
    with pytest.raises(InputError, match="train fraction"):
        data.split_files(["a.h5", "b.h5"], 1.0)


# -- bad files ---------------------------------------------------------------------------------
BAD_FILES = {
    "missing ECAL": (lambda: {"target": np.ones((2, 2))}, "missing key 'ECAL'"),
    "wrong shape": (lambda: _fixed_arrays(ECAL=np.zeros((4, 20, 20, 20), np.float32)), "expected \\(N, 25"),
    "no target": (lambda: {"ECAL": np.zeros((2, 25, 25, 25), np.float32), "energy": np.ones(2)},
                  "missing key 'target'"),
    "short target": (lambda: _fixed_arrays(target=np.ones((4, 1))), "'target' has shape"),
    "no theta": (lambda: {k: v for k, v in _angle_arrays().items() if k != "theta"}, "missing key 'theta'"),
    "NaN energy": (lambda: _angle_arrays(energy=np.array([1.0, np.nan, 3.0])), "primary energy of event 1"),
    "negative energy": (lambda: _fixed_arrays(target=np.array([[11, 5.0]] * 3 + [[11, -2.0]])),
                        "primary energy of event 3"),
    "NaN cell": (lambda: _fixed_arrays(ECAL=np.full((4, 25, 25, 25), np.nan, np.float32)), "NaN or infinite"),
    "negative cell": (lambda: _angle_arrays(ECAL=-np.ones((3, 51, 51, 25), np.float32)), "negative cell"),
    "theta in degrees": (lambda: _angle_arrays(theta=np.array([62.0, 90.0, 118.0])), "outside \\(0, pi\\)"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_malformed_files_are_one_line_errors_naming_the_file(tmp_path, name):
    arrays, problem = BAD_FILES[name]
    path = _write(tmp_path / "EleEscan_bad.h5", **arrays())
    with pytest.raises(InputError, match=problem) as err:
        data.read_showers(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_non_hdf5_and_truncated_files_are_input_errors(tmp_path, fixed_data_dir):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(InputError, match="not a readable HDF5 file"):
        data.read_showers(text)
    source = data.list_files(fixed_data_dir)[0]
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated") as err:
        data.read_showers(truncated)
    assert str(truncated) in str(err.value) and "\n" not in str(err.value)


def test_mixed_geometries_are_refused(tmp_path, fixed_data_dir, angle_data_dir):
    shutil.copy(data.list_files(fixed_data_dir)[0], tmp_path / "a.h5")
    shutil.copy(data.list_files(angle_data_dir)[0], tmp_path / "b.h5")
    with pytest.raises(InputError, match="one geometry"):
        data.load_showers(tmp_path)


# -- training preprocessing (section 1.5) ------------------------------------------------------
def test_fixed_preprocessing_cuts_scales_and_sums():
    images = np.zeros((2, 25, 25, 25), np.float32)
    images[0, 1, 2, 3], images[0, 4, 4, 4], images[1, 0, 0, 0] = 0.5, 5e-7, 2e-6
    arrays = data.training_arrays(images, np.array([50.0, 200.0]), None, FIXED)
    assert set(arrays) == {"image", "energy", "ecal"}
    assert arrays["image"].shape == (2, 25, 25, 25, 1) and arrays["image"].dtype == np.float32
    assert arrays["image"][0, 4, 4, 4, 0] == 0  # below 1e-6 GeV
    np.testing.assert_allclose(arrays["image"][0, 1, 2, 3, 0], 50.0)
    np.testing.assert_allclose(arrays["ecal"][:, 0], [50.0, 2e-4], rtol=1e-5)
    np.testing.assert_allclose(arrays["energy"][:, 0], [0.5, 2.0])


def test_angle_preprocessing_sums_before_the_power():
    raw = np.zeros((2, 51, 51, 25), np.float32)
    raw[0, 25, 25, 10], raw[0, 25, 26, 10], raw[1, 0, 0, 0] = 16.0, 4.0, 3.0
    arrays = data.training_arrays(raw, np.array([100.0, 5.0]), np.array([1.0, 2.0]), ANGLE)
    assert set(arrays) == {"image", "energy", "theta", "ecal"}
    np.testing.assert_allclose(arrays["ecal"][:, 0], [20.0, 3.0])
    np.testing.assert_allclose(arrays["image"][0, 25, 25, 10, 0], 16.0 ** transforms.ANGLE_POWER, rtol=1e-6)
    np.testing.assert_allclose(arrays["theta"][:, 0], [1.0, 2.0])
    np.testing.assert_array_equal(data.angle_keep_mask(arrays["ecal"][:, 0]), [True, False])


# -- harness data info -------------------------------------------------------------------------
def test_cli_info_describes_a_data_set(angle_data_dir, capsys):
    assert harness_main(["data", "info", str(angle_data_dir), "--check"]) == 0
    out = capsys.readouterr().out
    assert "format: angle; files: 3; events: 120" in out and "theta" in out
    assert harness_main(["data", "info", str(angle_data_dir / "nothing")]) == 2
