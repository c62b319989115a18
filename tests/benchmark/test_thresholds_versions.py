"""Registered thresholds versions other than the target: a release candidate is loaded by its
version, checked against the hash the registry pins, and its noise-floor limits (for the paired
precision gate) are its gated metrics at the floor_limit each records."""
import json

import pytest

from benchmark import quality
from harness import thresholds_registry
from reference_model.errors import InputError

CANDIDATE = "3dgan-quality-test-rc"  # tests/conftest.py registers it


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
                                         r"version; registered: .*3dgan-quality-v1, .*3dgan-quality-v2-rc"):
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


def test_the_noise_floor_of_a_candidate_is_its_gate_at_the_recorded_floors(thresholds_dir):
    v1 = quality.load_thresholds("3dgan")
    assert quality.noise_floor_thresholds(v1) is v1
    candidate = quality.load_thresholds("3dgan", version=CANDIDATE)
    floor = quality.noise_floor_thresholds(candidate)
    assert floor.limits == v1.limits and floor.name == f"{CANDIDATE}-noise-floor"
    assert floor.sha256 == candidate.sha256 and not floor.submittable


def test_a_candidate_with_a_metric_lacking_its_floor_is_refused(thresholds_dir):
    path = thresholds_dir / "candidate.json"
    document = json.loads(path.read_text())
    del document["metrics"]["objective.sampling_fraction"]["floor_limit"]
    document["version"] = "3dgan-quality-nofloor-rc"  # not a version the real registry holds
    path.write_text(json.dumps(document))
    thresholds_registry.register_version(path, thresholds_dir / "registry.json")
    with pytest.raises(InputError, match="records no floor_limit while other metrics do"):
        quality.noise_floor_thresholds(quality.load_thresholds("3dgan", version="3dgan-quality-nofloor-rc"))
