"""The default data of a run trained to the target is the benchmark's reference data set, the one
its target and RCPs were measured on, and data that cannot fill the target's bins is refused
before anything is launched, submitted or numbered (issue 23 §6)."""
import subprocess
import sys

import pytest

from benchmark import quality
from benchmark.recipe import reference_data
from harness.data_default import TrainingData, training_data
from harness.run_request import RunRequest
from reference_model.errors import InputError
from reference_model.specs import BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_time_to_accuracy_without_data_trains_and_is_judged_on_the_reference_data(name, tmp_path):
    reference = reference_data(name)
    target = quality.load_thresholds(name)
    assert reference.heldout_events >= target.evaluation_events
    data = {}
    for seed in (0, 7):  # every run of a submission on the same showers, whatever its seed
        request = RunRequest.from_argv(["--benchmark", name, "--mode", "tta", "--results", str(tmp_path),
                                        "--seed", str(seed), "--dry-run"])
        data[seed] = training_data(request)
    assert data[0] == data[7]
    assert data[0].train.name.endswith(f"seed{reference.train_data_seed}")
    assert data[0].heldout.name.endswith(f"seed{reference.heldout_data_seed}")
    assert data[0].train.parent == data[0].heldout.parent == tmp_path.resolve() / "data"


def test_other_runs_and_smoke_runs_keep_the_small_default_set(tmp_path):
    for argv in (["--mode", "epoch-time"], ["--mode", "tta", "--smoke"]):
        data = training_data(RunRequest.from_argv([*argv, "--results", str(tmp_path), "--dry-run"]))
        assert data.heldout is None and data.train.name == "standin-fixed-seed0"


def test_a_heldout_set_of_its_own_is_evaluated_instead_of_the_split(fixed_data_dir, tmp_path):
    request = RunRequest.from_argv(["--mode", "tta", "--data", str(tmp_path), "--heldout-data",
                                    str(fixed_data_dir), "--smoke", "--dry-run"])
    assert training_data(request) == TrainingData(tmp_path.resolve(), fixed_data_dir.resolve())
    with pytest.raises(InputError, match="--heldout-data .*--mode tta or throughput"):
        RunRequest.from_argv(["--mode", "epoch-time", "--data", str(tmp_path), "--heldout-data", str(tmp_path)])
    with pytest.raises(InputError, match="--heldout-data .*on --data"):
        RunRequest.from_argv(["--mode", "tta", "--heldout-data", str(tmp_path)])


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("launch", [[], ["--nodes", "4", "--launcher", "slurm", "--dry-run"]])
def test_data_that_cannot_fill_the_target_is_refused_before_launch(fixed_data_dir, tmp_path, launch):
    done = _run("--mode", "tta", "--data", str(fixed_data_dir), "--results", str(tmp_path),
                "--epochs", "1", "--max-steps-per-epoch", "2", *launch)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    [line] = [l for l in done.stderr.splitlines() if l.startswith("harness run: error:")]
    assert "the held-out split of --data" in line and str(fixed_data_dir) in line and "PosixPath" not in line
    assert "run without --data" in line
    assert not list(tmp_path.rglob("result_*")) and not list(tmp_path.rglob("*.sbatch"))
