"""Progress output for long work: one updating line on a terminal, sparse lines in logs."""
from __future__ import annotations

import sys
import time


class Progress:
    """Report `done / total` with rate and ETA; at most one line every `interval` s off a TTY."""

    def __init__(self, total: int, label: str, unit: str = "items", interval: float = 5.0) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self.start = self._last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.interval = 0.2 if self.tty else interval

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / max(self.total, 1)
        line = (f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:5.1f}%) "
                f"{rate:,.1f} {self.unit}/s, eta {eta:,.0f} s")
        end = "\r" if self.tty and self.done < self.total else "\n"
        print(line, end=end, file=sys.stderr, flush=True)
