"""The cross-node lock: one maker, waiters told whom they wait for, dead holders taken over."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reference_model import shared_lock
from reference_model.errors import InputError
from reference_model.shared_lock import SharedLock, lock_path, make_once

FAST = {"stale_after_s": 0.5, "heartbeat_s": 0.05, "poll_s": 0.05}


def _make_counting(target: str) -> None:
    """Make `target` as a slow maker would, counting how many processes made it."""
    target = Path(target)

    def make() -> None:
        with open(target.with_name("makers"), "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.3)
        target.write_text("made")

    make_once(target, target.is_file, make)
    assert target.read_text() == "made"


def test_one_of_many_processes_makes_it_and_the_others_use_it(tmp_path):
    target = tmp_path / "shared"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_make_counting, args=(str(target),)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len((tmp_path / "makers").read_text().split()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["makers", "shared"], "no lock or private file left"


def test_a_folder_left_half_made_is_made_again(tmp_path):
    target = tmp_path / "set"
    target.mkdir()
    (target / ".part.tmp").write_text("left by a maker that died")
    make_once(target, (target / "done").is_file, lambda: (target.mkdir(), (target / "done").write_text("")))
    assert sorted(p.name for p in target.iterdir()) == ["done"]


def test_a_waiter_says_whom_it_waits_for_in_one_line(tmp_path, capsys):
    target = tmp_path / "data"
    holder = SharedLock(target, **FAST)
    holder.__enter__()
    threading.Timer(0.4, holder.__exit__, (None, None, None)).start()
    with SharedLock(target, **FAST):
        pass
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("[harness] waiting for ") and f":{os.getpid()} making {target} (since " in line
    assert line.endswith(f"lock {lock_path(target)}) ...")


def test_a_live_holder_is_refused_without_waiting_in_one_line(tmp_path):
    target = tmp_path / "state"
    with SharedLock(target, "training"):
        with pytest.raises(InputError, match=rf"^{target}: \S+:{os.getpid()} is already training it \(lock "):
            with SharedLock(target, "training", wait=False):
                pass


def test_a_killed_holder_on_this_host_is_taken_over_at_once(tmp_path, capsys):
    target = tmp_path / "data"
    code = (f"from reference_model.shared_lock import SharedLock; import time\n"
            f"with SharedLock({str(target)!r}):\n    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert holder.stdout.readline() == "held\n"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    start = time.monotonic()
    with SharedLock(target, **FAST):
        assert time.monotonic() - start < 5
    [line] = capsys.readouterr().err.splitlines()
    assert line == (f"[harness] {os.uname().nodename}:{holder.pid} making {target} is gone, its lock is "
                    f"{lock_path(target)}: taking it over")
    assert not any(tmp_path.iterdir())


def _lock_of_another_node(target: Path) -> Path:
    path = lock_path(target)
    path.write_text(json.dumps({"host": "node-b", "pid": 4242, "pid_namespace": "", "started": 0.0,
                                "since": "2026-01-01 00:00:00 UTC", "token": "b"}))
    return path


def test_another_nodes_lock_is_taken_over_once_it_stops_changing(tmp_path, capsys):
    target = tmp_path / "data"
    _lock_of_another_node(target)
    start = time.monotonic()
    with SharedLock(target, **FAST):
        waited = time.monotonic() - start
    assert FAST["stale_after_s"] <= waited < FAST["stale_after_s"] + 2
    [waiting, taking_over] = capsys.readouterr().err.splitlines()
    assert waiting.startswith(f"[harness] waiting for node-b:4242 making {target} (since 2026-01-01")
    assert taking_over == (f"[harness] node-b:4242 making {target} has not touched its lock {lock_path(target)} "
                           "for 0.5 s: taking it over")


def test_a_heartbeat_keeps_a_holder_on_another_node_from_being_taken_over(tmp_path, monkeypatch, capsys):
    """Seen from another node (no pid to look up), the holder's heartbeat is all a waiter has."""
    monkeypatch.setattr(shared_lock.Holder, "running", lambda self: None)
    target = tmp_path / "data"
    holder = SharedLock(target, **FAST)
    holder.__enter__()
    threading.Timer(1.5, holder.__exit__, (None, None, None)).start()
    start = time.monotonic()
    with SharedLock(target, **FAST):
        assert time.monotonic() - start >= 1.4
    assert "taking it over" not in capsys.readouterr().err


def test_another_nodes_live_holder_is_refused_at_its_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(shared_lock.Holder, "running", lambda self: None)
    target = tmp_path / "state"
    with SharedLock(target, "training", **FAST):
        start = time.monotonic()
        with pytest.raises(InputError, match="is already training it"):
            with SharedLock(target, "training", wait=False, **FAST):
                pass
        assert time.monotonic() - start < FAST["stale_after_s"]


def test_a_file_that_is_no_lock_of_ours_is_taken_over_once_unchanged(tmp_path, capsys):
    target = tmp_path / "state"
    lock_path(target).write_text("garbage")
    with SharedLock(target, "training", wait=False, **FAST):
        pass
    assert "the process training" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_empty_lock_file_of_an_older_harness_is_taken_over_at_once(tmp_path, capsys):
    target = tmp_path / "systems" / "box.json"
    target.parent.mkdir()
    lock_path(target).touch()  # what the fcntl lock of earlier versions left beside every description
    start = time.monotonic()
    with SharedLock(target, "updating"):
        assert time.monotonic() - start < 1
    assert capsys.readouterr().err == (f"[harness] {lock_path(target)} is an empty lock file (older harness "
                                       "versions left these): taking it over\n")
