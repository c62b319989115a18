"""harness.sigterm_action: a SIGTERM records at once, even while the main thread waits in C."""
import signal
import subprocess
import sys
import textwrap

import psutil

CHILD = textwrap.dedent("""
    import subprocess, sys, threading
    from pathlib import Path
    from harness.sigterm_action import sigterm_runs

    marker = Path(sys.argv[1])
    sleeper = subprocess.Popen(["sleep", "120"])
    with sigterm_runs(lambda: marker.write_text("recorded")):
        print(sleeper.pid, flush=True)
        threading.Event().wait(120)  # the main thread blocked, as in LoadGen's StartTest
    marker.write_text("not stopped")
""")


def test_a_sigterm_runs_the_action_stops_the_children_and_ends_with_143(tmp_path):
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(marker)], stdout=subprocess.PIPE, text=True)
    sleeper = int(child.stdout.readline())
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "recorded"
    assert not psutil.pid_exists(sleeper) or psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE


def test_outside_the_context_sigterm_is_as_before():
    from harness.sigterm_action import sigterm_runs

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_runs(lambda: None):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.set_wakeup_fd(-1) == -1, "the wakeup fd is given back"
