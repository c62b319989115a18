"""The hold test: a generator judged on one fresh stand-in set per seed, every seed recorded, an
interrupted run resumed, campaign seeds refused; `harness validate` states the recorded rate."""
import json

import pytest

from benchmark import hold_test, quality
from harness.cli import main
from reference_model.errors import InputError
from tests.benchmark.test_ship import registered_version


def test_seed_lists_and_required_passes():
    assert hold_test.parse_seeds("5001-5003") == (5001, 5002, 5003)
    assert hold_test.parse_seeds("99, 101-102,99") == (99, 101, 102)
    for bad in ("5001-", "a", "7-3"):
        with pytest.raises(InputError, match="--seeds"):
            hold_test.parse_seeds(bad)
    assert hold_test.required_passes(20) == 19
    assert hold_test.required_passes(10) == 10
    assert hold_test.required_passes(40) == 38


def test_campaign_seeds_are_not_fresh(untrained_checkpoint, tmp_path):
    thresholds = quality.load_thresholds("3dgan", smoke=True)
    with pytest.raises(InputError, match="1001 is the 3dgan campaign's training set"):
        hold_test.run_hold_test(untrained_checkpoint, thresholds, (4001, 1001), tmp_path, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    assert hold_test.used_seeds()[2101] == "the 3dgan-angle campaign's held-out set"


def judge(checkpoint, tmp_path, monkeypatch, limit: float, seeds=(4001, 4002), **kwargs):
    version = registered_version(tmp_path, monkeypatch, limit)
    thresholds = quality.load_thresholds("3dgan", version=version)
    record = hold_test.record_path(checkpoint, thresholds.name)
    return thresholds, hold_test.run_hold_test(checkpoint, thresholds, seeds, tmp_path / "data", record, **kwargs)


def test_every_seed_is_judged_and_recorded(checkpoint_copy, tmp_path, monkeypatch):
    thresholds, loose = judge(checkpoint_copy, tmp_path, monkeypatch, 1e9)
    assert loose.seeds == [4001, 4002] and loose.passes == 2 and loose.holds
    assert "passes 3dgan-quality-ship-test-1e+09" in loose.summary() and "2 of 2" in loose.summary()
    recorded = json.loads(hold_test.record_path(checkpoint_copy, thresholds.name).read_text())
    assert set(recorded["seeds"]["4001"]["metrics"]) >= set(thresholds.limits)
    assert recorded["seeds"]["4001"]["shifts"] == {}  # what differs, for each failing separation power
    assert not list((tmp_path / "data").glob("fresh-*")), "each seed's data is removed once judged"

    _, strict = judge(checkpoint_copy, tmp_path, monkeypatch, 0.0)  # an untrained generator's showers
    assert strict.passes == 0 and not strict.holds
    assert strict.failing_counts() == {"objective.sampling_fraction": 2}


def test_an_interrupted_run_resumes_and_a_changed_target_starts_again(checkpoint_copy, tmp_path, monkeypatch):
    judge(checkpoint_copy, tmp_path, monkeypatch, 1e9, seeds=(4001,), keep_data=True)
    calls = []
    monkeypatch.setattr(quality, "evaluate_generator",
                        lambda *a, **k: calls.append(1) or pytest.fail("seed 4001 was judged again"))
    with pytest.raises(pytest.fail.Exception):
        judge(checkpoint_copy, tmp_path, monkeypatch, 1e9, seeds=(4001, 4002))
    assert calls == [1], "only the new seed is judged (then the stub stops the run)"


def test_validate_states_the_recorded_pass_rate(checkpoint_copy, fixed_data_dir, tmp_path, monkeypatch, capsys):
    version = registered_version(tmp_path, monkeypatch, 1e9)
    args = ["validate", "--reference", str(fixed_data_dir), "--candidate", str(checkpoint_copy), "--target", version]
    main(args)
    assert "no hold test on record" in capsys.readouterr().err
    judge(checkpoint_copy, tmp_path, monkeypatch, 1e9, seeds=(4001,))
    main(args)
    assert "hold test on record: this generator passes 3dgan-quality-ship-test-1e+09" in capsys.readouterr().err


def test_holdtest_command_exit_status(checkpoint_copy, tmp_path, monkeypatch, capsys):
    version = registered_version(tmp_path, monkeypatch, 0.0)
    status = main(["reference", "holdtest", "--candidate", str(checkpoint_copy), "--target", version,
                   "--seeds", "4001", "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert status == 1 and "seed 4001: FAIL objective.sampling_fraction" in out and "does not hold" in out
