"""`harness check`: a complete tree passes; each broken rule is reported precisely."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness import checks, results
from tests.harness.fake_runs import (SYSTEM, make_inference_result, make_training_result, write_system,
                                     write_training_log)


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    """The frozen thresholds the fake logs were 'trained' against."""
    thresholds = SimpleNamespace(version="v1", limits={"sampling_fraction": 0.05})
    monkeypatch.setattr(checks, "frozen_thresholds", lambda benchmark: thresholds)
    return thresholds


@pytest.fixture
def tree(tmp_path):
    """A submission: 5 time-to-accuracy runs, 3 epoch-time runs, one inference run."""
    write_system(tmp_path)
    for _ in range(5):
        make_training_result(tmp_path, "3dgan", "tta")
    for _ in range(3):
        make_training_result(tmp_path, "3dgan", "epoch-time")
    make_inference_result(tmp_path)
    return tmp_path


def messages(root, per_run=False):
    problems, _ = checks.check_tree(root, per_run=per_run)
    return [str(p) for p in problems]


def test_complete_tree_passes(tree):
    problems, checked = checks.check_tree(tree)
    assert problems == [] and checked == 9


def test_smoke_results_are_refused(tree):
    make_training_result(tree, "3dgan", "epoch-time", smoke=True)
    found = messages(tree)
    assert len(found) == 1 and "result_4.json: smoke" in found[0]
    assert messages(tree, per_run=True) == [], "--per-run accepts a smoke run for a work tree"


def test_too_few_runs(tmp_path):
    write_system(tmp_path)
    for _ in range(4):
        make_training_result(tmp_path, "3dgan", "tta")
    found = messages(tmp_path)
    assert len(found) == 1 and "4 run(s), 5 required" in found[0]


def test_more_than_one_run_missing_the_target(tree):
    for _ in range(2):
        make_training_result(tree, "3dgan", "tta", status="aborted")
    assert any("2 runs did not reach the quality target" in m for m in messages(tree))


def test_log_without_run_stop(tree):
    log = tree / "results" / SYSTEM / "strong" / "3dgan" / "result_2.txt"
    log.write_text("".join(line for line in log.read_text().splitlines(keepends=True) if '"run_stop"' not in line))
    found = messages(tree)
    assert any("result_2.json: compliance: Required EXACTLY_ONE occurrence of 'run_stop'" in m for m in found)


def test_summary_must_agree_with_its_log(tree):
    path = tree / "results" / SYSTEM / "strong" / "3dgan" / "result_3.json"
    summary = json.loads(path.read_text())
    results.write_json_atomic(path, {**summary, "seconds": summary["seconds"] + 60})
    assert any("result_3.json: summary seconds" in m for m in messages(tree))
    results.write_json_atomic(path, {**summary, "status": "aborted"})
    assert any("summary status 'aborted' but the log's run_stop says 'success'" in m for m in messages(tree))


def test_last_evaluation_must_pass_the_frozen_thresholds(tree, frozen):
    frozen.limits["sampling_fraction"] = 0.001  # the logged 0.01 no longer passes
    found = messages(tree)
    assert sum("sampling_fraction = 0.01 does not pass the frozen threshold 0.001" in m for m in found) == 5
    frozen.limits["sampling_fraction"] = 0.05
    frozen.version = "v2"
    assert any("quality thresholds 'v1', the frozen ones are 'v2'" in m for m in messages(tree))


def test_log_filed_under_the_wrong_system(tree):
    other = tree / "results" / "other_cpu" / "weak" / "3dgan"
    other.mkdir(parents=True)
    for suffix in (".txt", ".json"):
        (tree / "results" / SYSTEM / "weak" / "3dgan" / f"result_1{suffix}").rename(other / f"result_1{suffix}")
    found = messages(tree, per_run=True)
    assert any("systems/other_cpu.json: missing" in m for m in found)
    assert any("log submission_platform 'testsys_cpu', expected 'other_cpu'" in m for m in found)


def test_unfinished_runs_and_bad_inference(tree):
    results.allocate_training_run(tree, SYSTEM, "3dgan", "tta")
    make_inference_result(tree, valid=False)
    make_inference_result(tree, streams=2, official_minimum=False)
    found = messages(tree)
    assert any("result_6.txt.partial: unfinished run" in m for m in found)
    assert any("run_2/result.json: LoadGen did not report" in m for m in found)
    assert any("run_3/result.json: shorter than MLPerf's official minimum" in m for m in found)


def test_division_in_log_must_match_the_system(tmp_path):
    write_system(tmp_path, division="open")
    make_training_result(tmp_path, "3dgan", "epoch-time")
    assert any("log submission_division 'closed', expected 'open'" in m for m in messages(tmp_path, per_run=True))


def test_cli_exit_codes(tmp_path):
    write_system(tmp_path)
    for _ in range(3):
        make_training_result(tmp_path, "3dgan", "epoch-time")
    command = [sys.executable, "-m", "harness.cli", "check", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0 and "3 result(s)" in done.stdout
    make_training_result(tmp_path, "3dgan", "epoch-time", smoke=True)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1 and "smoke" in done.stdout
    done = subprocess.run(command[:-1] + [str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_partial_log_is_not_a_finished_result(tmp_path):
    write_system(tmp_path)
    run = results.allocate_training_run(tmp_path, SYSTEM, "3dgan", "epoch-time")
    write_training_log(run.log, mode="epoch-time")
    assert results.iter_results(tmp_path) == []
    assert checks.check_tree(tmp_path, per_run=True) == ([], 0)


def test_removed_runs_are_reported(tree):
    for suffix in (".txt", ".json"):
        (tree / "results" / SYSTEM / "strong" / "3dgan" / f"result_2{suffix}").unlink()
    make_training_result(tree, "3dgan", "tta")  # keeps the result at 5 runs
    found = messages(tree)
    assert len(found) == 1 and "run(s) 2 missing: every run of a result counts" in found[0]


def test_closed_tta_evaluates_every_epoch(tmp_path):
    """Skipping the evaluation of epoch 1 (stopping on a lucky late check) is open division only."""
    from harness.compliance import check_log

    for division in ("closed", "open"):
        log = tmp_path / f"{division}.txt"
        write_training_log(log, division=division, learning_rate=1e-3)
        kept = [line for line in log.read_text().splitlines(keepends=True)
                if not ('"eval_' in line and '"epoch_num": 1' in line)]
        log.write_text("".join(kept))
        result = check_log(log, "3dgan")
        if division == "closed":
            assert not result.passed and any("s['evaluations'] == s['epochs']" in m for m in result.messages)
        else:
            assert result.passed, result.messages
