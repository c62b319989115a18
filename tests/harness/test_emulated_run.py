"""`harness run --mode tta --emulate-ranks N`: the arithmetic of N ranks in one process, logged as
emulated, filed under ROOT/emulated/ and never accepted as a timed result by `harness check`."""
import json
import shutil
import subprocess
import sys

import pytest

from harness.compliance import check_log
from harness.run_request import RunRequest, to_argv
from reference_model.errors import InputError


def test_emulation_is_for_one_process_time_to_accuracy():
    with pytest.raises(InputError, match="--emulate-ranks 4: emulation is time-to-accuracy"):
        RunRequest.from_argv(["--mode", "epoch-time", "--emulate-ranks", "4"])
    with pytest.raises(InputError, match="on 1 node x 1 rank"):
        RunRequest.from_argv(["--mode", "tta", "--emulate-ranks", "4", "--ranks-per-node", "2"])
    request = RunRequest.from_argv(["--mode", "tta", "--emulate-ranks", "4"])
    assert request.emulate_ranks == 4 and RunRequest.from_argv(to_argv(request)) == request


@pytest.mark.slow
def test_an_emulated_tta_run_is_logged_and_filed_apart(fixed_data_dir, tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--mode", "tta", "--smoke",
                           "--emulate-ranks", "2", "--data", str(fixed_data_dir), "--results", str(tmp_path),
                           "--epochs", "2", "--max-steps-per-epoch", "3", "--warmup-epochs", "1"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]  # 1: target not reached
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("result_*.json"))
    [summary_path] = list((tmp_path / "emulated").glob("*/strong/3dgan/result_*.json"))
    summary = json.loads(summary_path.read_text())
    log = summary_path.with_name(summary["log"])
    events = {e["key"]: e for e in (json.loads(line.split(":::MLLOG ", 1)[1])
                                    for line in log.read_text().splitlines() if ":::MLLOG" in line)}
    assert events["emulated_ranks"]["value"] == 2 and events["number_of_ranks"]["value"] == 2
    assert events["global_batch_size"]["value"] == 16  # 2 x the per-rank batch of 8
    assert check_log(log, "3dgan").passed  # a well-formed log ...
    submitted = tmp_path / "results" / summary_path.relative_to(tmp_path / "emulated").parent
    submitted.mkdir(parents=True)
    for path in (summary_path, log):
        shutil.copy(path, submitted / path.name)
    shutil.copytree(tmp_path / "emulated" / summary["system"], tmp_path / "results" / summary["system"],
                    dirs_exist_ok=True)
    check = subprocess.run([sys.executable, "-m", "harness.cli", "check", "--per-run", str(tmp_path)],
                           capture_output=True, text=True)
    assert check.returncode != 0  # ... but never a timed result
    assert "ranks were emulated in one process" in check.stdout + check.stderr
