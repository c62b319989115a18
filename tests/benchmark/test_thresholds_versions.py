"""Registered thresholds versions other than the target: a release candidate is loaded by its
version, checked against the hash the registry pins, and its noise-floor limits (for the paired
precision gate) come from the version its floors were taken from."""
import json

import pytest

from benchmark import quality
from harness import thresholds_registry
from reference_model.errors import InputError

CANDIDATE = "3dgan-quality-v2-rc"  # tests/conftest.py registers it


@pytest.fixture
def thresholds_dir(registered_candidate):
    return registered_candidate


def test_a_registered_version_loads_by_name_and_the_target_is_unchanged(thresholds_dir):
    candidate = quality.load_thresholds("3dgan", version=CANDIDATE)
    target = quality.load_thresholds("3dgan")
    assert candidate.name == CANDIDATE and not candidate.submittable
    assert target.name == "3dgan-quality-v1" and target.submittable
    assert candidate.limits["objective.sampling_fraction"] == pytest.approx(
        10 * target.limits["objective.sampling_fraction"])


def test_an_unknown_version_names_the_registered_ones(thresholds_dir):
    with pytest.raises(InputError, match=r"--target 3dgan-quality-v9: not a registered 3dgan quality "
                                         r"version; registered: .*3dgan-quality-v1, 3dgan-quality-v2-rc"):
        quality.load_thresholds("3dgan", version="3dgan-quality-v9")
    with pytest.raises(InputError, match="not a registered 3dgan quality version"):
        quality.load_thresholds("3dgan", version="3dgan-smoke-v1")  # the smoke target has its own flag
    with pytest.raises(InputError, match="not a registered 3dgan quality version"):
        quality.load_thresholds("3dgan", version="3dgan-angle-quality-v1")


def test_a_version_whose_file_was_edited_is_refused(thresholds_dir):
    path = thresholds_dir / "candidate.json"
    path.write_text(path.read_text().replace('"submittable": false', '"submittable": true'))
    with pytest.raises(InputError, match=f"not the file registered as {CANDIDATE}"):
        quality.load_thresholds("3dgan", version=CANDIDATE)


def test_noise_floor_limits_come_from_the_version_the_floors_came_from(thresholds_dir):
    v1 = quality.load_thresholds("3dgan")
    assert quality.noise_floor_thresholds(v1) is v1
    floor = quality.noise_floor_thresholds(quality.load_thresholds("3dgan", version=CANDIDATE))
    assert floor.version == v1.version and floor.limits == v1.limits


def test_floors_from_another_file_than_the_registered_one_are_refused(thresholds_dir):
    path = thresholds_dir / "candidate.json"
    document = json.loads(path.read_text())
    document["calibration"]["floors_from"] = "3dgan-quality-v1+sha256.000000000000"
    document["version"] = "3dgan-quality-v3-rc"
    path.write_text(json.dumps(document))
    thresholds_registry.register_version(path, thresholds_dir / "registry.json")
    candidate = quality.load_thresholds("3dgan", version="3dgan-quality-v3-rc")
    with pytest.raises(InputError, match="its floors came from 3dgan-quality-v1\\+sha256.000000000000"):
        quality.noise_floor_thresholds(candidate)
