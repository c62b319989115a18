"""The default data of a run trained to the target fills the target's bins, and data that cannot
is refused before anything is launched, submitted or numbered (issue 23 §6)."""
import subprocess
import sys

import pytest

from benchmark import quality
from harness.data_default import time_to_accuracy_events
from harness.run_request import RunRequest


def test_the_default_time_to_accuracy_set_is_sized_for_the_target():
    request = RunRequest.from_argv(["--mode", "tta"])
    target = quality.load_thresholds("3dgan")
    events = time_to_accuracy_events(request)
    assert events * (1 - request.train_fraction) >= 1.25 * target.evaluation_events  # 162,500 for v2
    assert time_to_accuracy_events(RunRequest.from_argv(["--mode", "tta", "--smoke"])) == 4000


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
