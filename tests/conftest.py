"""Suite-wide test settings: quiet TensorFlow, one thread per op unless a test says otherwise."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")


# -- shared stand-in data sets (issue 3) ----------------------------------------------------------
import pytest  # noqa: E402

FIXED_DATA = {"n_events": 600, "events_per_file": 150, "seed": 11}  # 4 files
ANGLE_DATA = {"n_events": 120, "events_per_file": 40, "seed": 12}  # 3 files


@pytest.fixture(scope="session")
def fixed_data_dir(tmp_path_factory):
    """A small fixed-geometry stand-in set in the real layout: 4 files x 150 events, 10-500 GeV."""
    from reference_model.simulator import write_dataset

    directory = tmp_path_factory.mktemp("fixed_data")
    write_dataset(directory, geometry="fixed", progress=False, **FIXED_DATA)
    return directory


@pytest.fixture(scope="session")
def angle_data_dir(tmp_path_factory):
    """A small angle-geometry stand-in set in the real layout: 3 files x 40 events, 2-500 GeV."""
    from reference_model.simulator import write_dataset

    directory = tmp_path_factory.mktemp("angle_data")
    write_dataset(directory, geometry="angle", progress=False, **ANGLE_DATA)
    return directory


# -- a generator checkpoint for the inference tests (issue 6) -------------------------------------
@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory):
    """A verified 3dgan generator checkpoint with seeded random weights (untrained: its showers
    fail the physics gate; for plumbing and speed tests only)."""
    import keras

    from reference_model.checkpoint import save_generator
    from reference_model.specs import get_spec

    spec = get_spec("3dgan")
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "untrained-3dgan-generator.weights.h5"
    return save_generator(path, spec.build_generator(), spec, {"untrained": True})


@pytest.fixture
def checkpoint_copy(untrained_checkpoint, tmp_path):
    """A private copy of the untrained checkpoint, weights and sidecar, to write beside or damage."""
    import shutil

    from reference_model.checkpoint import sidecar_path

    copy = tmp_path / untrained_checkpoint.name
    shutil.copy(untrained_checkpoint, copy)
    shutil.copy(sidecar_path(untrained_checkpoint), sidecar_path(copy))
    return copy


# -- a registered release candidate (issue 11) -------------------------------------------------
CANDIDATE_VERSION = "3dgan-quality-test-rc"
NOISE_FLOOR_VERSION = "3dgan-quality-v1"  # the noise-floor calibration; the target until v2's promotion


@pytest.fixture
def registered_candidate(tmp_path, monkeypatch):
    """The repository's thresholds and registry in a scratch folder as before any candidate was
    promoted (v1, the noise floor, is the 3dgan target), plus a registered, not submittable 3dgan
    candidate shaped like v2's: limits 10x v1's, each recording v1's limit as its floor_limit."""
    import copy
    import json
    import shutil

    from benchmark import quality
    from harness import thresholds_registry

    directory = tmp_path / "thresholds"
    shutil.copytree(quality.THRESHOLDS_DIR, directory)
    monkeypatch.setattr(quality, "THRESHOLDS_DIR", directory)
    registry = json.loads((directory / "registry.json").read_text())
    registry["targets"]["3dgan"] = NOISE_FLOOR_VERSION
    (directory / "registry.json").write_text(json.dumps(registry, indent=1))
    v1 = quality.load_thresholds("3dgan")
    document = copy.deepcopy(v1.document)
    document.update(version=CANDIDATE_VERSION, submittable=False)
    document["calibration"]["floors_from"] = v1.version
    for entry in document["metrics"].values():
        entry["floor_limit"] = entry["threshold"]
        entry["threshold"] *= 10
    (directory / "candidate.json").write_text(json.dumps(document))
    thresholds_registry.register_version(directory / "candidate.json", directory / "registry.json")
    return directory
