"""`harness run --mode inference`: what it refuses before anything is measured."""
import pytest

from benchmark import quality
from harness.run_inference import _reference_showers
from harness.run_request import RunRequest
from reference_model.errors import InputError


def test_a_held_out_split_too_small_for_the_gate_names_the_files_and_the_fix(fixed_data_dir):
    request = RunRequest.from_argv(["--mode", "inference", "--data", str(fixed_data_dir)])
    with pytest.raises(InputError) as refused:
        _reference_showers(request, quality.load_thresholds("3dgan"))
    message = str(refused.value)
    assert message.startswith(f"--data's held-out split (the files after --train-fraction 0.9; a lower fraction "
                              f"holds out more) {fixed_data_dir}/EleEscan_1_003.h5: ")
    assert "give more events" in message and "PosixPath" not in message and "\n" not in message


def test_an_official_server_search_brackets_the_rate_with_short_runs():
    """With --official, the QPS search's trials run at --loadgen-duration (the chosen rate then
    runs once at the official minimum); without it every run is the same."""
    from types import SimpleNamespace

    from benchmark.loadgen_runner import LoadGenConfig
    from harness.run_inference import _trial_config

    official = LoadGenConfig.official("Server", max_batch=64)
    request = SimpleNamespace(official=True, loadgen_duration=60.0, loadgen_queries=None)
    trial = _trial_config(official, request)
    assert (trial.min_duration_ms, trial.min_query_count, trial.max_batch) == (60_000, None, 64)
    short = LoadGenConfig("Server", min_duration_ms=10_000)
    assert _trial_config(short, SimpleNamespace(official=False, loadgen_duration=3.0, loadgen_queries=5)) is short


def test_single_stream_runs_one_stream_with_every_thread_of_the_best_point():
    from harness.run_inference import scenario_point

    best = {"max_batch": 256, "streams": 2, "intra_op": 1, "inter_op": 1}
    assert scenario_point(best, "SingleStream") == {"max_batch": 256, "streams": 1, "intra_op": 2, "inter_op": 1}
    assert scenario_point(best, "Offline") == best == scenario_point(best, "Server")
    one = {"max_batch": 128, "streams": 1, "intra_op": 2, "inter_op": 1}
    assert scenario_point(one, "SingleStream") == one


def _swept(precision: str, batch: int, rate: float, p99_ms: float):
    from benchmark.inference import PointResult, SweepPoint

    return PointResult(SweepPoint(precision, batch, 2, 1, 1), "measured", showers_per_second=rate,
                       batch_latency_ms={"p99": p99_ms})


SWEEP = [_swept("float32", 256, 1400.0, 370.0), _swept("float32", 64, 1300.0, 95.0),
         _swept("float32", 32, 1200.0, 48.0), _swept("bfloat16", 256, 2400.0, 210.0)]


def test_server_runs_the_fastest_setting_whose_batch_fits_a_third_of_the_fixed_bound():
    """rules.md section 9: 3dgan's Server bound is 250 ms, so its batches may take 83 ms."""
    from harness.run_inference import _best_point, server_batch_limit_ms

    assert server_batch_limit_ms("3dgan", None) == pytest.approx(250 / 3)
    assert server_batch_limit_ms("3dgan-angle", None) == pytest.approx(2500 / 3)
    assert _best_point(SWEEP, "float32").point.batch == 256, "Offline takes the fastest point"
    assert _best_point(SWEEP, "float32", server_batch_limit_ms("3dgan", None)).point.batch == 32
    assert _best_point(SWEEP, "float32", server_batch_limit_ms("3dgan", 300.0)).point.batch == 64


def test_server_is_not_run_when_no_swept_setting_fits_its_bound(capsys):
    from types import SimpleNamespace

    from harness.run_inference import _run_loadgen

    request = SimpleNamespace(benchmark="3dgan", server_latency_ms=None, batch=[256])
    recorder = SimpleNamespace(reserve_inference=lambda *args: pytest.fail("no run is reserved"))
    assert _run_loadgen(request, recorder, "bfloat16", None, None, SWEEP, ["Server"], {}, {}, {}, True) == 1
    assert ("LoadGen Server bfloat16 not run: no swept setting's 99th-percentile batch latency is within 83 ms, "
            "a third of the Server latency bound; sweep smaller batches") in capsys.readouterr().out


def test_a_server_search_that_finds_no_rate_is_kept_as_an_aborted_attempt(tmp_path, monkeypatch, capsys):
    """rules.md section 9: its number stays used (no missing run), its trials' logs beside it."""
    from types import SimpleNamespace

    from harness import run_inference
    from harness.results import Recorder, iter_results

    def no_rate(request, runner, config, log_dir, best, artifact):
        (log_dir / "qps-100.0").mkdir()
        return SimpleNamespace(best=None, trials=[object()], to_dict=lambda: {"trials": [{"qps": 100.0}]})

    monkeypatch.setattr(run_inference, "_server_search", no_rate)
    request = SimpleNamespace(benchmark="3dgan", server_latency_ms=None, batch=[32], server_qps=None, seed=0,
                              official=False, server_search=4, loadgen_duration=1.0, loadgen_queries=None)
    recorder = Recorder(tmp_path, "testsys_cpu")
    assert run_inference._run_loadgen(request, recorder, "float32", None, None, SWEEP, ["Server"],
                                      {}, {}, {}, True) == 1
    [found] = iter_results(tmp_path)
    summary = found.summary
    assert found.summary_path.parent.name == "run_1"
    assert (summary["status"], summary["reason"]) == ("aborted", "no target QPS met the latency bound in 1 runs")
    assert summary["loadgen_runs"] == ["qps-100.0"] and summary["server_search"] == {"trials": [{"qps": 100.0}]}
    assert summary["settings"] == {"precision": "float32", "batch_size": 32, "streams": 2}
    assert "recorded as aborted in" in capsys.readouterr().out


def test_a_damaged_checkpoint_stops_the_run_before_anything_is_measured(checkpoint_copy, tmp_path):
    """The weights are hashed when the run resolves them, before the roofline: a truncated copy of a
    checkpoint (its sidecar intact) is refused in one line."""
    from harness.run_inference import resolve_checkpoint

    checkpoint_copy.write_bytes(checkpoint_copy.read_bytes()[:100_000])
    request = RunRequest.from_argv(["--mode", "inference", "--checkpoint", str(checkpoint_copy)])
    with pytest.raises(InputError, match=r"SHA-256 .* does not match the recorded .*the file is corrupt or was changed$"):
        resolve_checkpoint(request, tmp_path)
