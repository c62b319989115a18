"""Scoring as MLPerf does it, and the bootstrap interval used by compare and regress."""
import json
import math

import pytest

from harness.mlperf_log import LogTiming
from harness.scoring import (bootstrap_ratio, olympic_mean, score_instances, score_results, score_throughput,
                             score_time_to_accuracy)
from harness import results
from tests.harness.fake_runs import make_training_result, write_rcps


def test_olympic_mean_drops_fastest_and_slowest():
    assert olympic_mean([10, 1, 4, 5, 6]) == 5.0
    assert olympic_mean([2.0, 4.0]) == 3.0


def test_time_to_accuracy_score():
    score = score_time_to_accuracy([600, 660, 720, 780, 6000])
    assert score.valid and score.value == pytest.approx(12.0)  # minutes, 6000 s dropped
    one_failed = score_time_to_accuracy([600, 660, 720, 780, None])
    # the failure is the dropped slowest: mean(11, 12, 13), not the olympic mean of the four finishers (11.5)
    assert one_failed.valid and one_failed.value == pytest.approx(12.0)
    two_failed = score_time_to_accuracy([600, 660, 720, None, None])
    assert not two_failed.valid and two_failed.value is None
    assert "4 run(s), 5 required" in score_time_to_accuracy([600, 660, 720, 780]).reason


def test_throughput_score_needs_every_run():
    assert score_throughput([10.0, 12.0, 11.0], required=3).value == 11.0
    failed = score_throughput([10.0, None, 11.0], required=3)
    assert not failed.valid and failed.reason == "1 run(s) failed"


def test_bootstrap_interval():
    fast, slow = [10.0, 10.5, 9.5, 10.2, 9.8], [20.0, 21.0, 19.0, 20.4, 19.6]
    low, high = bootstrap_ratio(slow, fast)
    assert low < 2.0 < high and high - low < 0.3
    assert bootstrap_ratio(slow, fast) == (low, high), "fixed seed: the same report twice"
    assert bootstrap_ratio([1.0], fast) is None


def test_runs_are_grouped_by_configuration(tmp_path):
    for seconds in (60, 120, 180):
        make_training_result(tmp_path, "3dgan", "tta", seconds=seconds)
    make_training_result(tmp_path, "3dgan", "tta", seconds=30, per_rank_batch=16)
    scored = score_results(results.iter_results(tmp_path))
    assert [(s.config["per_rank_batch"], s.score.runs) for s in scored] == [(16, 1), (8, 3)]
    assert math.isclose(scored[1].score.value, 2.0)


# -- scores come from the logs (issue 12, section 6) ---------------------------------------------
def test_time_to_accuracy_is_scored_from_the_log_not_the_summary(tmp_path):
    runs = [make_training_result(tmp_path, "3dgan", "tta", seconds=s) for s in (60, 120, 180, 240, 300)]
    summary = json.loads(runs[4].final_summary.read_text())
    results.write_json_atomic(runs[4].final_summary, {**summary, "seconds": 6.0})
    [scored] = score_results(results.iter_results(tmp_path))
    assert not scored.score.valid
    assert "result_5 not counted, summary seconds 6.000 but the log times run_start to run_stop" in scored.score.reason
    assert scored.score.values == [1.0, 2.0, 3.0, 4.0], "minutes from the logs; the edited run is left out"


def timing(start_s: float, stop_s: float, status: str = "success", nodes: int = 1) -> LogTiming:
    return LogTiming(run_start_ms=start_s * 1000, run_stop_ms=stop_s * 1000, status=status, nodes=nodes)


def test_a_throughput_set_is_max_run_stop_minus_min_run_start():
    """MLPerf HPC weak scaling: time to train all instances, over those that reached the target."""
    instances = [timing(0, 600), timing(30, 540), timing(10, 900), timing(5, 700), timing(20, 650)]
    score = score_instances(instances)
    assert score.valid and score.value == pytest.approx(15.0) and score.runs == 5
    failed = score_instances([*instances[:4], timing(0, 2000, status="aborted")])
    assert not failed.valid and "4 of 5 instance(s) reached the target, 5 required" in failed.reason
    assert failed.value == pytest.approx(15.0), "an instance that missed the target is not in the span"
    mixed = score_instances([*instances[:4], timing(20, 650, nodes=2)])
    assert not mixed.valid and "different scales" in mixed.reason


def _inference_summary(**target) -> dict:
    check = {"thresholds": "3dgan-quality-v2+sha256.c1cc3bc82ca7", "smoke": False, "submittable": True,
             "passed": True, **target}
    return {"mode": "inference", "status": "success", "submittable": False, "official_minimum": True,
            "quality": {"checkpoint_target": check}}


@pytest.mark.parametrize("summary, reason", [
    ({"mode": "epoch-time", "status": "success", "submittable": True}, ""),
    ({"mode": "tta", "status": "success", "submittable": False}, "smoke"),
    ({"mode": "tta", "status": "aborted", "submittable": False}, "did not finish"),
    ({**_inference_summary(), "quality": None}, "not gated"),
    (_inference_summary(smoke=True), "smoke"),
    (_inference_summary(thresholds="3dgan-quality-v2-rc+sha256.2ce7e256a9bd", submittable=False),
     "checked against 3dgan-quality-v2-rc, not the target"),
    (_inference_summary(passed=False), "checkpoint below the target"),
    ({**_inference_summary(), "official_minimum": False}, "shorter than MLPerf's official minimum"),
])
def test_a_result_says_why_it_is_not_submittable(summary, reason):
    from harness.scoring import not_submittable_reason

    assert not_submittable_reason(summary) == reason


# -- reference convergence points (issue 23, section 3) ----------------------------------------
def test_a_tta_result_carries_its_rcp_verdict_and_a_faster_pass_is_normalised(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    rcps = tmp_path / "rcp"
    rcps.mkdir()
    write_rcps(rcps, samples=(118, 122, 126, 128, 130, 131, 132, 134, 138, 142))  # olympic mean 130.125
    monkeypatch.setattr("benchmark.rcp.RCP_DIR", rcps)
    root = tmp_path / "root"
    for _ in range(5):
        make_training_result(root, "3dgan", "tta", seconds=60.0)  # 128 samples each, 1 minute
    make_training_result(root, "3dgan", "epoch-time")
    epoch_time, tta = score_results(results.iter_results(root))
    assert epoch_time.rcp is None
    assert tta.rcp["status"] == "RCP found" and tta.rcp["passed"] and tta.rcp["run_mean"] == 128
    assert tta.rcp["norm_factor"] == pytest.approx(130.125 / 128)
    assert tta.score.value == pytest.approx(tta.rcp["norm_factor"]), "MLPerf multiplies the score by the factor"
    assert tta.score.values == pytest.approx([1.0] * 5), "each run's minutes stay as measured"
    assert main(["summarize", str(root)]) == 0
    out = capsys.readouterr().out
    assert "pass: RCP found, score x1.017" in out
    assert "RCP verdict, testsys_cpu 3dgan tta (" in out and "the score is normalised x1.017" in out
