"""Scoring as MLPerf does it, and the bootstrap interval used by compare and regress."""
import math

import pytest

from harness.scoring import (bootstrap_ratio, olympic_mean, score_results, score_throughput,
                             score_time_to_accuracy)
from harness import results
from tests.harness.fake_runs import make_training_result


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
