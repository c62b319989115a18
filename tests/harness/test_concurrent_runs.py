"""Many runs, one results root (issue 26): concurrent runs into a fresh root all finish with
distinct numbers, the default data is made once, and a run killed while making it is recovered
from by the next. Each run is its own process doing what `harness run` does to a results root,
through the harness's own layers: the default stand-in data, the system description, a LoadGen
run and a sweep, each with its number; `harness check` then judges the tree."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import results
from reference_model.errors import InputError
from reference_model.shared_lock import lock_path
from tests.harness.fake_runs import SYSTEM, make_inference_result

REPOSITORY = Path(__file__).resolve().parents[2]
RUNS = 8


def one_run(root: str) -> None:
    """One run into `root`, as `harness run` writes it (started as its own process)."""
    from harness.data_default import training_data
    from harness.run_request import RunRequest

    data = training_data(RunRequest.from_argv(["--mode", "epoch-time", "--results", root]))
    recorder = results.Recorder.open(Path(root), SYSTEM)
    recorder.describe_system()
    run = make_inference_result(Path(root), system=SYSTEM)
    recorder.write_sweep("3dgan", [{"run": run.parent.name, "data": str(data.train)}], {"data": str(data.train)})


def start_run(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"from {__name__} import one_run; one_run({str(root)!r})"],
                            cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_tree_is_whole(root: Path, runs: int) -> None:
    """Every run numbered once, nothing under a temporary name, and `harness check` passes."""
    system = root / "results" / SYSTEM / "3dgan"
    assert sorted(p.name for p in (system / "Offline" / "performance").iterdir()) == \
        sorted(f"run_{i}" for i in range(1, runs + 1))
    assert sorted(p.name for p in (system / "sweeps").iterdir()) == \
        sorted(f"sweep_{i}.{kind}" for i in range(1, runs + 1) for kind in ("json", "txt"))
    leftovers = [p for p in root.rglob("*") if re.search(r"\.partial|\.tmp|\.lock", p.name)]
    assert not leftovers, leftovers
    check = subprocess.run([sys.executable, "-m", "harness.cli", "check", "--per-run", str(root)],
                           capture_output=True, text=True, cwd=REPOSITORY)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_eight_concurrent_runs_into_a_fresh_root_lose_nothing(tmp_path):
    root = tmp_path / "root"
    runs = [start_run(root) for _ in range(RUNS)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, out + err
    makers = [out for out, _ in outputs if "[harness] making 4000 stand-in" in out]
    assert len(makers) == 1, "the default data is made by one run"
    assert any("[harness] waiting for " in err for _, err in outputs), "the others said whom they waited for"
    assert_tree_is_whole(root, RUNS)


@pytest.mark.slow
def test_a_run_killed_making_the_default_data_is_recovered_from_at_once(tmp_path):
    root = tmp_path / "root"
    data = root / "data" / "standin-fixed-seed0"
    killed = start_run(root)
    while not any(data.glob(".*.tmp")):  # the lock is held and the first file is being written
        assert killed.poll() is None, killed.communicate()
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate()
    start = time.monotonic()
    out, err = start_run(root).communicate(timeout=600)
    assert time.monotonic() - start < 120, "recovered in bounded time"
    [line] = [line for line in err.splitlines() if "taking it over" in line]
    assert line == (f"[harness] {os.uname().nodename}:{killed.pid} making {data} is gone, its lock is "
                    f"{lock_path(data)}: taking it over")
    assert "[harness] making 4000 stand-in" in out
    assert_tree_is_whole(root, 1)


def test_a_campaign_trained_twice_at_once_is_refused_in_one_line(tmp_path, monkeypatch):
    from benchmark import campaign

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path / "convergence")
    with campaign.session_lock("3dgan", 1):
        with pytest.raises(InputError, match=r"3dgan-seed1: \S+:\d+ is already training it \(lock .*\); wait "
                                             r"until that process ends, or stop it$"):
            with campaign.session_lock("3dgan", 1):
                pass
    with campaign.session_lock("3dgan", 1):  # released: the next session trains
        pass
