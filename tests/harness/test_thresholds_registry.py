"""One thresholds version names one file hash: benchmark/thresholds/registry.json."""
import json
import shutil

import pytest

from harness import thresholds_registry as registry

THRESHOLDS = registry.REGISTRY.parent


def test_every_thresholds_file_is_registered_under_its_own_version():
    """Fails when a thresholds file changes without a new version and a registry entry."""
    assert registry.unregistered_files() == []
    hashes = [entry["sha256"] for entry in registry.load_registry()["versions"].values()]
    assert len(hashes) == len(set(hashes)), "one hash, one version"


def test_an_edited_file_needs_a_new_version(tmp_path):
    copy = tmp_path / "thresholds"
    shutil.copytree(THRESHOLDS, copy)
    document = json.loads((copy / "3dgan.json").read_text())
    document["metrics"][next(iter(document["metrics"]))]["threshold"] *= 2
    (copy / "3dgan.json").write_text(json.dumps(document))
    [problem] = registry.unregistered_files(copy)
    assert problem.startswith("3dgan.json: changed since 3dgan-quality-v1 was registered")
    document["version"] = registry.next_version("3dgan", registry.load_registry())
    (copy / "3dgan.json").write_text(json.dumps(document))
    assert registry.unregistered_files(copy) == [f"3dgan.json: version '{document['version']}' is not "
                                                 "registered; add it to registry.json"]


def test_judging_logged_pairs():
    from benchmark.quality import load_thresholds

    for benchmark in ("3dgan", "3dgan-angle"):
        for smoke in (False, True):
            assert registry.judge(load_thresholds(benchmark, smoke=smoke).version).known
    draft = registry.judge("3dgan-quality-v1+sha256.0834bb8717ab")
    assert not draft.known and draft.recorded and "uncommitted draft" in draft.problem
    assert not registry.judge("3dgan-quality-v1+sha256.88df1430b2b").recorded, "12 hex digits, not a prefix"
    assert "not '<version>+sha256.<hash>'" in registry.judge("v1").problem


def test_the_next_version_is_past_every_registered_one():
    versions = {name: {} for name in ("3dgan-quality-v1", "3dgan-quality-v3", "3dgan-smoke-v1",
                                      "3dgan-angle-quality-v1", "my3dgan-quality-v9")}
    assert registry.next_version("3dgan", {"versions": versions}) == "3dgan-quality-v4"
    assert registry.next_version("3dgan-angle", {"versions": versions}) == "3dgan-angle-quality-v2"
    assert registry.next_version("3dgan-angle", {"versions": {}}) == "3dgan-angle-quality-v1"
    candidate = {"versions": {"3dgan-quality-v1": {}, "3dgan-quality-v2-rc": {}}}
    assert registry.next_version("3dgan", candidate) == "3dgan-quality-v3", "v2 is the candidate's promotion"


def test_calibrate_names_its_thresholds_with_the_next_unregistered_version(monkeypatch):
    """`harness calibrate` without --version never reuses a registered name."""
    from benchmark import calibration
    from harness.cli import build_parser

    class Calibrated(Exception):
        pass

    def calibrate(benchmark, version, **kwargs):
        raise Calibrated(version)

    monkeypatch.setattr(calibration, "calibrate", calibrate)
    unregistered = registry.next_version("3dgan", registry.load_registry())
    assert unregistered not in registry.load_registry()["versions"]
    for argv, expected in ((["calibrate", "--benchmark", "3dgan"], unregistered),
                           (["calibrate", "--benchmark", "3dgan", "--version", "mine"], "mine")):
        args = build_parser().parse_args(argv)
        with pytest.raises(Calibrated) as calibrated:
            args.func(args)
        assert str(calibrated.value) == expected


def test_registering_a_new_version_never_replaces_a_published_one(tmp_path):
    copy = tmp_path / "thresholds"
    shutil.copytree(THRESHOLDS, copy)
    index = copy / "registry.json"
    document = json.loads((copy / "3dgan.json").read_text())
    document["version"] = "3dgan-quality-v9-rc"
    candidate = copy / "3dgan-v9-rc.json"
    candidate.write_text(json.dumps(document))
    pair = registry.register_version(candidate, index)
    assert pair == registry.logged_pair("3dgan-quality-v9-rc", registry.file_sha256(candidate))
    assert registry.unregistered_files(copy, json.loads(index.read_text())) == []
    assert registry.register_version(candidate, index) == pair, "the same file again: nothing changes"
    candidate.write_text(json.dumps({**document, "description": "edited"}))
    with pytest.raises(Exception, match="already registered"):
        registry.register_version(candidate, index)
    (copy / "3dgan.json").write_text(json.dumps({**document, "version": "3dgan-quality-v1"}) + " ")
    with pytest.raises(Exception, match="3dgan-quality-v1 is already registered"):
        registry.register_version(copy / "3dgan.json", index)


def test_every_benchmark_has_a_registered_submittable_target():
    from benchmark.quality import load_thresholds
    from reference_model.specs import SPECS

    targets = registry.load_registry()["targets"]
    assert set(targets) == {spec.benchmark for spec in SPECS.values()}
    for benchmark, version in targets.items():
        thresholds = load_thresholds(benchmark)
        assert thresholds.name == version and thresholds.submittable and not thresholds.smoke


def test_only_a_registered_submittable_version_becomes_a_target(tmp_path):
    copy = tmp_path / "thresholds"
    shutil.copytree(THRESHOLDS, copy)
    index = copy / "registry.json"
    with pytest.raises(Exception, match="not registered"):
        registry.set_target("3dgan", "3dgan-quality-v9", index)
    with pytest.raises(Exception, match="not a submittable 3dgan target"):
        registry.set_target("3dgan", "3dgan-smoke-v1", index)
    with pytest.raises(Exception, match="not a submittable 3dgan target"):
        registry.set_target("3dgan", "3dgan-angle-quality-v1", index)
    registry.set_target("3dgan", "3dgan-quality-v1", index)
    assert json.loads(index.read_text())["targets"]["3dgan"] == "3dgan-quality-v1"
