"""The training watchdog lets a SIGTERM'd run finish its step and checkpoint however slow its
steps are, and still ends a stop that hangs."""
import os
import time

from benchmark.trainer import Watchdog


def sigterm(dog: Watchdog) -> None:
    """What SIGTERM's C handler does: a byte on the wakeup fd. Sent as a real signal, it would
    kill a pytest-xdist worker, whose tests run off the main thread where no handler is set."""
    os.write(dog._write_fd, b"\x0f")


def test_the_grace_is_twice_the_slowest_gap_and_none_before_the_first_beat():
    dog = Watchdog(timeout_s=600, on_abort=None, grace_s=30)
    assert dog.grace() is None
    dog.last_beat -= 5.0
    dog.beat()
    assert dog.grace() == 30  # fast steps: the fixed grace
    dog.last_beat -= 40.0
    dog.beat()
    dog.beat()  # a fast step after a slow one keeps the slow one's measure
    assert 80.0 <= dog.grace() < 81.0


def test_a_sigterm_after_slow_steps_waits_for_the_step_and_then_counts_as_hung(monkeypatch):
    fired = []
    monkeypatch.setattr(Watchdog, "_fire", lambda self, reason: fired.append(reason))
    with Watchdog(timeout_s=600, on_abort=None, grace_s=0.1) as dog:
        time.sleep(2.0)
        dog.beat()  # a 2 s step: a stop may take 4 s
        sigterm(dog)
        time.sleep(2.0)
        assert dog.terminate.is_set() and fired == [], "a stop as slow as the steps counted as hung"
        time.sleep(3.5)
    assert fired and "could not stop cleanly" in fired[0]


def test_a_sigterm_before_the_first_step_is_left_to_the_hang_timeout(monkeypatch):
    fired = []
    monkeypatch.setattr(Watchdog, "_fire", lambda self, reason: fired.append(reason))
    with Watchdog(timeout_s=600, on_abort=None, grace_s=0.1) as dog:
        sigterm(dog)
        time.sleep(2.5)
        assert dog.terminate.is_set()
    assert fired == []
