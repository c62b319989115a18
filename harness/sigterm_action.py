"""A SIGTERM that records before the process ends, even while the main thread waits in C++.

Python runs signal handlers only in the main thread between bytecodes, so a handler would wait
out a ten-minute LoadGen test (`StartTest` blocks in C++) and Slurm's SIGKILL would come first.
Python's C-level handler writes the signal number to the wakeup fd at once, so a thread reading
that fd acts at once: it runs the action (a run recorded as aborted), stops this process's
children (LoadGen's stream processes, waited for, killed after a grace) and ends the process with
128 + SIGTERM.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator

import psutil

_DONE = b"\0"  # written by the context's exit: no signal number is 0


@contextlib.contextmanager
def sigterm_runs(action: Callable[[], None]) -> Iterator[None]:
    """While inside, a SIGTERM runs `action`, stops the children and ends the process. Only the
    main thread can set this up; elsewhere it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a Python handler, so the fd is written

    def watch() -> None:
        while (data := os.read(read_fd, 64)) and _DONE not in data:
            if signal.SIGTERM in data:
                try:
                    action()
                finally:
                    _stop(psutil.Process().children(recursive=True))
                    sys.stdout.flush()
                    os._exit(128 + signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="sigterm-action", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, _DONE)
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)


def _stop(children: list[psutil.Process], grace_s: float = 5.0) -> None:
    """SIGTERM the children, wait up to `grace_s` for them to end, SIGKILL what is left: they
    are gone (and reaped) when the process ends, not just signalled."""
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=grace_s)
