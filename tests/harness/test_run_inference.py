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
