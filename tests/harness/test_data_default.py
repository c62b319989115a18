"""The default data of a run trained to the target is the benchmark's reference data set, the one
its target and RCPs were measured on, and data that cannot fill the target's bins is refused
before anything is launched, submitted or numbered (issue 23 §6)."""
import shutil
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
    train = tmp_path / "train"
    shutil.copytree(fixed_data_dir, train)
    request = RunRequest.from_argv(["--mode", "tta", "--data", str(train), "--heldout-data",
                                    str(fixed_data_dir), "--smoke", "--dry-run"])
    assert training_data(request) == TrainingData(train.resolve(), fixed_data_dir.resolve())
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


def test_a_default_set_for_epoch_time_is_sized_for_the_runs_global_batch(tmp_path):
    """At 256 nodes x 4 ranks x 8 the embedded 4,000 events make no step per rank; the default
    set grows to give EPOCH_MIN_STEPS steps per epoch (the submission set's epoch-time step)."""
    from harness.data_default import EPOCH_MIN_STEPS, scaled_events

    one = RunRequest.from_argv(["--mode", "epoch-time", "--results", str(tmp_path), "--dry-run"])
    assert scaled_events(one) == 4000 and training_data(one).train.name == "standin-fixed-seed0"
    big = RunRequest.from_argv(["--mode", "epoch-time", "--nodes", "256", "--ranks-per-node", "4",
                                "--results", str(tmp_path), "--dry-run"])
    events = scaled_events(big)
    assert events * 0.9 >= EPOCH_MIN_STEPS * 8192 and events % 500 == 0 and events < 1.01 * EPOCH_MIN_STEPS * 8192 / 0.9
    assert training_data(big).train.name == f"standin-fixed-{events}-seed0"


@pytest.mark.parametrize("launch", [["--launcher", "mpirun", "--ranks-per-node", "64", "--oversubscribe"],
                                    ["--launcher", "slurm", "--nodes", "8", "--ranks-per-node", "8"]])
def test_data_too_small_for_one_step_per_rank_is_refused_before_launch(fixed_data_dir, tmp_path, launch):
    """450 training events over 64 ranks are 7 per rank: no batch of 8."""
    done = _run("--mode", "epoch-time", "--data", str(fixed_data_dir), "--results", str(tmp_path), "--dry-run",
                *launch)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    [line] = [l for l in done.stderr.splitlines() if l.startswith("harness run: error:")]
    assert "give each of 64 ranks 7 per epoch, fewer than one batch of 8" in line and "harness data synth" in line
    assert not list(tmp_path.rglob("result_*")) and not list(tmp_path.rglob("*.sbatch"))


def test_the_submission_sets_batch_job_is_refused_too(fixed_data_dir, tmp_path):
    done = _run("--nodes", "8", "--ranks-per-node", "8", "--launcher", "slurm", "--dry-run", "--data",
                str(fixed_data_dir), "--results", str(tmp_path))
    assert done.returncode == 2 and "fewer than one batch of 8" in done.stderr.splitlines()[-1]
    assert "#SBATCH" not in done.stdout


def test_a_scaling_series_is_refused_before_its_first_point_when_a_larger_one_gets_no_step(
        fixed_data_dir, tmp_path):
    done = _run("--mode", "scaling", "--scaling-type", "weak", "--ranks-list", "1,64", "--cores-per-rank", "1",
                "--oversubscribe", "--data", str(fixed_data_dir), "--results", str(tmp_path), "--dry-run")
    assert done.returncode == 2 and "give each of 64 ranks 7 per epoch" in done.stderr.splitlines()[-1]
    assert "[scaling] weak" not in done.stdout, "no point ran"
