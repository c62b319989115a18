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
