"""LoadGen over the generator: logs land where asked, LoadGen's verdict is what is reported."""
import multiprocessing
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark import loadgen_runner as lgr
from reference_model.errors import InputError

SUMMARY = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 56.47
Result is : INVALID
  Performance constraints satisfied : Yes
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
================================================
Additional Stats
================================================
50.00 percentile latency (ns)   : 10136267
99.00 percentile latency (ns)   : 23069153
"""


@pytest.fixture(scope="module")
def runner(untrained_checkpoint):
    from benchmark.precision import load_runner
    from reference_model.specs import get_spec

    return load_runner("float32", untrained_checkpoint, get_spec("3dgan"))


@pytest.mark.parametrize("scenario", ["Offline", "SingleStream"])
def test_tiny_scenario_writes_loadgen_logs_and_its_verdict(runner, scenario, tmp_path):
    config = lgr.LoadGenConfig(scenario, min_duration_ms=300, min_query_count=8, max_batch=8,
                               sample_pool=64)
    result = lgr.run_scenario(runner, config, tmp_path)
    for log in (lgr.SUMMARY_LOG, lgr.DETAIL_LOG):
        assert (tmp_path / log).is_file()
    summary = (tmp_path / lgr.SUMMARY_LOG).read_text()
    assert f"Scenario : {scenario}" in summary
    assert f"Result is : {result.verdict}" in summary and result.verdict in ("VALID", "INVALID")
    assert result.valid == (result.verdict == "VALID")
    assert result.samples_per_second > 0
    assert result.latency_ns["50.00"] <= result.latency_ns["99.00"]
    assert result.official_minimum is False  # 300 ms is far below MLPerf's 600 s
    assert result.settings["min_duration_ms"] == 300
    if scenario == "Offline":
        assert result.settings["offline_samples"] >= 1
    else:
        assert result.settings["min_query_count"] == 8


def test_invalid_verdict_is_reported_as_loadgen_wrote_it(tmp_path):
    (tmp_path / lgr.SUMMARY_LOG).write_text(SUMMARY)
    result = lgr.result_from_summary("Server", tmp_path, {"min_duration_ms": 600_000,
                                                          "min_query_count": 270_336})
    assert result.valid is False and result.verdict == "INVALID"
    assert result.samples_per_second == pytest.approx(56.47)
    assert result.checks["Early stopping satisfied"] == "NO"
    assert result.latency_ns == {"50.00": 10136267, "99.00": 23069153}
    assert result.official_minimum is True


# A real LoadGen 5 SingleStream summary: Zen 4's first float32 run (results/README.md).
SINGLE_STREAM_RUN = (Path(__file__).resolve().parents[2]
                     / "results/results/vm_amd-epyc-zen-4/3dgan/SingleStream/performance/run_1")


def test_single_stream_metric_is_the_early_stopping_estimate():
    """MLPerf scores SingleStream by LoadGen's early-stopping estimate of the 90th percentile."""
    result = lgr.result_from_summary("SingleStream", SINGLE_STREAM_RUN,
                                     {"min_duration_ms": 600_000, "min_query_count": 100})
    assert result.early_stopping_ns == {"90.0": 7421119, "99.0": 9352149}
    assert result.scenario_latency_ns() == 7421119
    assert result.samples_per_second == pytest.approx(1e9 / 6791811)
    result.early_stopping_ns = {}
    assert result.scenario_latency_ns() == 7411595, "no estimate: the measured percentile"
    result.scenario = "Offline"
    assert result.scenario_latency_ns() is None


def test_missing_summary_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="mlperf_log_summary.txt"):
        lgr.result_from_summary("Offline", tmp_path, {"min_duration_ms": 1, "min_query_count": 1})


def test_official_minimum_follows_mlperf_inference_rules():
    assert not lgr.official_minimum("SingleStream", 599_999, 10_000)
    assert lgr.official_minimum("SingleStream", 600_000, 100)
    assert not lgr.official_minimum("MultiStream", 600_000, 661)
    assert lgr.official_minimum("MultiStream", 600_000, 662)
    assert not lgr.official_minimum("Offline", 600_000, 1, offline_samples=24_575)
    assert lgr.official_minimum("Offline", 600_000, 1, offline_samples=24_576)


def test_scenarios_parse_case_insensitively_and_refuse_unknown_ones():
    assert lgr.parse_scenarios(None) == ["Offline", "SingleStream", "MultiStream", "Server"]
    assert lgr.parse_scenarios("offline,server,Offline") == ["Offline", "Server"]
    with pytest.raises(InputError, match="Batch"):
        lgr.parse_scenarios("Offline,Batch")


def test_server_rate_comes_from_the_calibration_and_its_bound_is_the_benchmarks():
    """rules.md section 9: the bound is fixed per benchmark, whatever the system's own speed."""
    calibration = {"latency_s": {"1": 0.01, "8": 0.05}, "full_batch_s": 0.5, "batch_throughput": 256.0}
    for benchmark, bound_ms in (("3dgan", 250.0), ("3dgan-angle", 2500.0)):
        settings, record = lgr.loadgen_settings(lgr.LoadGenConfig("Server", max_batch=128), calibration, benchmark)
        assert record["server_target_qps"] == pytest.approx(128.0)  # half the batch throughput
        assert record["server_target_latency_ms"] == bound_ms
        assert settings.server_target_latency_ns == int(bound_ms * 1e6)
        assert record["min_query_count"] == lgr.DEFAULT_MIN_QUERIES["Server"]
    slower = {**calibration, "full_batch_s": 5.0}
    assert lgr.loadgen_settings(lgr.LoadGenConfig("Server"), slower, "3dgan")[1]["server_target_latency_ms"] == 250.0
    explored = lgr.LoadGenConfig("Server", server_latency_ms=40.0)
    assert lgr.loadgen_settings(explored, calibration, "3dgan")[1]["server_target_latency_ms"] == 40.0
    with pytest.raises(InputError, match="no Server latency bound is fixed for benchmark 'other'"):
        lgr.loadgen_settings(lgr.LoadGenConfig("Server"), calibration, "other")


def test_offline_expects_more_than_the_calibration_so_a_faster_run_still_lasts_min_duration():
    calibration = {"latency_s": {"1": 0.01, "8": 0.05}, "full_batch_s": 0.5, "batch_throughput": 1720.0}
    settings, record = lgr.loadgen_settings(lgr.LoadGenConfig("Offline", min_duration_ms=600_000), calibration, "3dgan")
    assert settings.offline_expected_qps == record["offline_expected_qps"] == pytest.approx(2150.0)
    sustained = 1906.0  # measured after a 1,720 samples/s calibration
    assert 1.1 * settings.offline_expected_qps * 600 / sustained >= 600, "the query outlasts min_duration"


def test_official_config_asks_for_mlperfs_minimums():
    for scenario in lgr.SCENARIOS:
        config = lgr.LoadGenConfig.official(scenario, max_batch=64)
        assert config.min_duration_ms == 600_000 and config.max_batch == 64
        assert lgr.official_minimum(scenario, config.min_duration_ms, config.min_query_count,
                                    offline_samples=lgr.OFFICIAL_OFFLINE_MIN_SAMPLES)
    assert not lgr.official_minimum("Server", 600_000, 662)


def _fake_server(capacity_qps: float, calls: list):
    """run_scenario stand-in: VALID exactly when the target QPS is within `capacity_qps`."""
    def run(runner, config, log_dir, artifact=None):
        calls.append(config.server_target_qps)
        valid = config.server_target_qps <= capacity_qps
        return lgr.LoadGenResult("Server", valid, "VALID" if valid else "INVALID", config.server_target_qps,
                                 {}, {}, {"server_target_qps": config.server_target_qps}, False, str(log_dir))
    return run


def test_server_search_bisects_to_the_highest_valid_qps(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(lgr, "run_scenario", _fake_server(300.0, calls))
    search = lgr.search_server_qps(None, lgr.LoadGenConfig("Server"), tmp_path, 6, 10.0, 1000.0)
    assert calls[0] == 1000.0 and len(calls) == 6
    assert search.best_qps <= 300.0 and search.best_qps >= 300.0 - (1000.0 - 10.0) / 2 ** 5
    assert [t["valid"] for t in search.trials] == [q <= 300.0 for q in calls]
    assert search.to_dict()["best"]["valid"] is True


def test_server_search_stops_when_the_ceiling_already_meets_the_bound(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(lgr, "run_scenario", _fake_server(5000.0, calls))
    assert lgr.search_server_qps(None, lgr.LoadGenConfig("Server"), tmp_path, 6, 10.0, 1000.0).best_qps == 1000.0
    assert calls == [1000.0]


def test_server_search_refuses_an_empty_range(tmp_path):
    with pytest.raises(InputError, match="server QPS search"):
        lgr.search_server_qps(None, lgr.LoadGenConfig("Server"), tmp_path, 3, 10.0, 10.0)


def test_official_server_runs_start_at_the_best_trial_and_fall_back_until_one_passes():
    """rules.md section 9: the first official run is at the highest rate a trial passed; while none
    passed, the next is at the next lower such rate."""
    assert lgr.next_official_rate([569.0, 826.4, 955.2], []) == 955.2
    assert lgr.next_official_rate([569.0, 826.4, 955.2], [(955.2, False)]) == 826.4
    assert lgr.next_official_rate([569.0, 826.4, 955.2], [(955.2, False), (826.4, False), (569.0, False)]) is None
    assert lgr.next_official_rate([955.2], [(955.2, True)]) is None, "nothing failed above it"


def test_official_server_runs_bisect_to_the_tolerance_or_the_run_limit():
    bracket = [(1206.5, False), (1043.9, False), (718.7, True)]
    assert lgr.next_official_rate([718.7, 1043.9, 1206.5], bracket) == pytest.approx((718.7 + 1043.9) / 2)
    close = [(1000.0, False), (960.0, True)]  # 4.2% apart: within 5%
    assert lgr.next_official_rate([960.0, 1000.0], close) is None
    assert lgr.next_official_rate([960.0, 1000.0], close, tolerance=0.01) == pytest.approx(980.0)
    assert lgr.next_official_rate([2000.0], [(2000.0, False)] + [(100.0 * k, True) for k in range(1, 6)]) is None, \
        "6 official runs at most"


def test_official_server_runs_are_recorded_and_the_highest_valid_is_the_result(monkeypatch, tmp_path, capsys):
    """Zen 4 int8's trials passed 955.2 QPS but ten minutes held only below ~900: the official runs
    fall back to 826.4, then bisect; the result is the highest rate that passed."""
    calls = []
    monkeypatch.setattr(lgr, "run_scenario", _fake_server(900.0, calls))
    trials = [{"target_qps": q, "valid": v} for q, v in ((1083.9, False), (569.0, True), (826.4, True), (955.2, True))]
    search = lgr.ServerSearch(best_qps=955.2, best=None, trials=list(trials))
    outcome = lgr.official_server_runs(None, lgr.LoadGenConfig.official("Server", max_batch=32), search, tmp_path)
    assert calls == pytest.approx([955.2, 826.4, 890.8, 923.0])
    assert outcome.valid and outcome.settings["server_target_qps"] == pytest.approx(890.8)
    official = [t for t in search.trials if t.get("official")]
    assert [t["verdict"] for t in official] == ["INVALID", "VALID", "VALID", "INVALID"]
    assert search.to_dict()["official_search"] == {"tolerance": 0.05, "max_runs": 6}
    assert lgr.server_search_problem(search.to_dict(), outcome.settings["server_target_qps"]) == ""
    assert "official run 4 (at most 6)" in capsys.readouterr().out


def test_an_official_search_without_a_passing_trial_is_refused(tmp_path):
    search = lgr.ServerSearch(best_qps=None, best=None, trials=[{"target_qps": 10.0, "valid": False}])
    with pytest.raises(RuntimeError, match="no target QPS met the latency bound in 1 trials"):
        lgr.official_server_runs(None, lgr.LoadGenConfig.official("Server"), search, tmp_path)


def test_a_recorded_server_search_is_checked_against_the_rule():
    trials = [{"target_qps": q, "valid": v} for q, v in ((1000.0, False), (500.0, True), (750.0, True))]
    rule = {"tolerance": 0.05, "max_runs": 6}
    wrong_first = {"trials": trials + [{"target_qps": 500.0, "valid": True, "official": True}], "official_search": rule}
    assert "official run 1 ran at 500.0 QPS, where the rule's was 750.0 QPS" in lgr.server_search_problem(wrong_first, 500.0)
    looser = {"trials": trials + [{"target_qps": 750.0, "valid": True, "official": True}],
              "official_search": {"tolerance": 0.5, "max_runs": 6}}
    assert "not the rule's" in lgr.server_search_problem(looser, 750.0)
    assert lgr.server_search_problem({**looser, "official_search": rule}, 750.0) == ""
    assert "not at its highest VALID trial's 750.0" in lgr.server_search_problem({"trials": trials}, 500.0)


# -- several streams -------------------------------------------------------------------------
FAKE_CALIBRATION = {"latency_s": {"1": 0.002, "8": 0.004}, "full_batch_s": 0.004, "batch_throughput": 4000.0}


def _recording_stream(sizes: list, fail: bool = False):
    """A stand-in stream: records each batch's size, takes a millisecond, or raises."""
    def run(indices):
        if fail:
            raise RuntimeError("stream 1 gone")
        sizes.append(len(indices))
        time.sleep(0.001)
    return run


def _fake_streams(runs: list):
    @contextmanager
    def streams(runner, config, artifact):
        yield runs, {"streams": len(runs), "intra_op": 1, "inter_op": 1,
                     "stream_cores": [[i] for i in range(len(runs))], "stream_processes": True}
    return streams


FIXED_RUNNER = SimpleNamespace(spec=SimpleNamespace(benchmark="3dgan"))  # what run_scenario asks a runner


def test_calibration_spreads_a_query_over_the_streams_and_loads_them_all():
    first, second = [], []
    calibration = lgr.calibrate([_recording_stream(first), _recording_stream(second)], max_batch=16,
                                sample_pool=8, repeats=2)
    assert first == [1] * 3 + [4] * 3 + [16] * 3  # a warm-up round, then 2 timed, per shape
    assert second == [4] * 3 + [16] * 3
    assert calibration["batch_throughput"] == pytest.approx(2 * 16 / calibration["full_batch_s"])


def test_a_multistream_query_is_split_over_the_free_streams(monkeypatch, tmp_path):
    sizes = [[], []]
    monkeypatch.setattr(lgr, "sut_streams", _fake_streams([_recording_stream(s) for s in sizes]))
    monkeypatch.setattr(lgr, "calibrate", lambda *args: FAKE_CALIBRATION)
    config = lgr.LoadGenConfig("MultiStream", min_duration_ms=200, min_query_count=16, max_batch=8,
                               sample_pool=64, streams=2)
    result = lgr.run_scenario(FIXED_RUNNER, config, tmp_path)
    assert max(sizes[0] + sizes[1]) == 4, "no stream took a whole query of 8 while the other was free"
    assert len(sizes[0]) >= 16 and len(sizes[1]) >= 16
    assert sum(sizes[0] + sizes[1]) % lgr.MULTISTREAM_SAMPLES_PER_QUERY == 0
    assert result.settings["streams"] == 2 and result.settings["max_batch"] == 8


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream"])
def test_a_sut_faster_than_its_calibration_still_lasts_min_duration(monkeypatch, tmp_path, scenario):
    """LoadGen pre-generates queries for twice min_duration at the expected latency and calls a run
    that uses them up INVALID: the main job's angle float32 SingleStream did, calibrated at 51 ms
    and served at 25. Here the calibration says 2.5x the 1 ms the stream takes."""
    slow = {**FAKE_CALIBRATION, "latency_s": {"1": 0.0025, "8": 0.0025}}
    monkeypatch.setattr(lgr, "sut_streams", _fake_streams([_recording_stream([])]))
    monkeypatch.setattr(lgr, "calibrate", lambda *args: slow)
    config = lgr.LoadGenConfig(scenario, min_duration_ms=300, min_query_count=16, max_batch=8, sample_pool=64)
    result = lgr.run_scenario(FIXED_RUNNER, config, tmp_path)
    assert "Min duration satisfied : Yes" in (tmp_path / lgr.SUMMARY_LOG).read_text()
    assert result.settings["expected_latency_ms"] == pytest.approx(lgr.LATENCY_HEADROOM * 2.5, rel=1e-3)


def test_a_failing_stream_ends_the_test_with_an_error_naming_it(monkeypatch, tmp_path):
    served = []
    streams = [_recording_stream(served), _recording_stream([], fail=True)]
    monkeypatch.setattr(lgr, "sut_streams", _fake_streams(streams))
    monkeypatch.setattr(lgr, "calibrate", lambda *args: FAKE_CALIBRATION)
    config = lgr.LoadGenConfig("Offline", min_duration_ms=300, max_batch=8, sample_pool=64, streams=2)
    with pytest.raises(RuntimeError, match=r"^LoadGen Offline: stream 1 gone \(the samples left were "
                                           r"completed unserved"):
        lgr.run_scenario(FIXED_RUNNER, config, tmp_path)


def test_a_stream_process_that_cannot_start_is_one_clear_error():
    setup = lgr.StreamSetup(0, 1, "3dgan", "float32", "no-such-checkpoint", 1, 1, (100_000,), 8, 0, 8)
    stream = lgr.StreamProcess(multiprocessing.get_context("spawn"), setup)
    try:
        with pytest.raises(RuntimeError) as failure:
            stream.wait_ready(time.monotonic() + 120)
    finally:
        stream.close()
    assert str(failure.value).startswith("LoadGen stream 0 of 1 (cores 100000) failed loading: OSError")
    assert "\n" not in str(failure.value)
    assert not multiprocessing.active_children()


def test_several_streams_need_the_artifact_their_processes_load(runner, tmp_path):
    with pytest.raises(InputError, match="artifact"):
        lgr.run_scenario(runner, lgr.LoadGenConfig("Offline", streams=2), tmp_path)


needs_two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two streams need two cores")


@pytest.mark.slow
@needs_two_cores
@pytest.mark.parametrize("scenario", ["Offline", "SingleStream"])
def test_two_pinned_stream_processes_serve_the_scenario(runner, untrained_checkpoint, scenario, tmp_path):
    config = lgr.LoadGenConfig(scenario, min_duration_ms=1000, min_query_count=8, max_batch=8,
                               sample_pool=64, streams=2)
    result = lgr.run_scenario(runner, config, tmp_path, artifact=untrained_checkpoint)
    assert result.verdict in ("VALID", "INVALID") and result.samples_per_second > 0
    assert f"Result is : {result.verdict}" in (tmp_path / lgr.SUMMARY_LOG).read_text()
    settings = result.settings
    assert settings["streams"] == 2 and settings["stream_processes"] and settings["max_batch"] == 8
    first, second = settings["stream_cores"]
    assert first and second and not set(first) & set(second)
    assert settings["intra_op"] == len(first)
    assert settings["calibration"]["batch_throughput"] > 0
    if scenario == "Offline":
        assert settings["offline_samples"] >= 1
    assert not multiprocessing.active_children()


@pytest.mark.slow
@needs_two_cores
def test_a_stream_process_that_dies_is_one_clear_error_and_leaves_no_process(
        runner, untrained_checkpoint, monkeypatch, tmp_path):
    calibrate = lgr.calibrate

    def calibrate_then_kill_stream_1(streams, *args):
        calibration = calibrate(streams, *args)
        os.kill(streams[1].pid, signal.SIGKILL)
        return calibration

    monkeypatch.setattr(lgr, "calibrate", calibrate_then_kill_stream_1)
    config = lgr.LoadGenConfig("Offline", min_duration_ms=1000, max_batch=8, sample_pool=64, streams=2)
    with pytest.raises(RuntimeError, match=r"^LoadGen Offline: LoadGen stream 1 of 2 \(cores \d+\) died "
                                           r"running a batch \(exit code -9\)"):
        lgr.run_scenario(runner, config, tmp_path, artifact=untrained_checkpoint)
    assert not multiprocessing.active_children()
