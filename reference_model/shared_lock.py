"""One process makes what many share, also across the nodes of a cluster: a lock file per thing.

What is shared under a results root or a data directory (the default stand-in data, converted
models, the system description, a campaign's state) is made or changed under a `SharedLock`: one
process holds it, the others wait and then use what it made (`make_once`). Run numbers need no
lock: each is claimed by an exclusive create of its own name (`harness.results`).

The lock, and why it is made this way:
- it is a file beside the shared thing, `.<name>.lock`, created by hard-linking a private file
  that already holds the holder's host, pid and token onto that name (the recipe of open(2) for
  NFS). link(2) is atomic on local disks, NFS, Lustre and GPFS, and the lock never exists without
  its holder's identity (an O_EXCL create followed by a write would, for an instant). fcntl and
  flock are not used: Lustre without the `flock` mount option and some NFS setups do not honour
  them across clients, so two nodes would both hold the lock.
- a holder that is gone blocks nobody for long. On the holder's own host (and PID namespace) its
  process is looked up: if it is gone (or its pid is another process's now) the lock is taken
  over at once. A process on another node cannot be looked up, so the holder touches its lock
  every HEARTBEAT_S, and a lock that a waiter has seen unchanged for STALE_AFTER_S on its own
  clock (node clocks need not agree) is taken over: within STALE_AFTER_S + POLL_S. A holder on
  another node that is stopped (SIGSTOP) for that long loses its lock.
- taking over goes through a second lock, `<lock>.break`, held for milliseconds, so that of many
  waiters only one removes the stale lock, and none removes the lock of the holder after it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

from reference_model.errors import InputError

HEARTBEAT_S = 10.0  # how often a holder touches its lock
STALE_AFTER_S = 120.0  # a lock seen unchanged this long from another node is its dead holder's
POLL_S = 0.5  # how often a waiter looks again


def lock_path(target: Path) -> Path:
    """The lock of `target` (a file or a folder): hidden beside it, so that removing or remaking
    `target` leaves the lock alone."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def _pid_namespace() -> str:
    """This process's PID namespace: one host name in two containers is two machines for pids."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as the lock file says: enough for any node to tell whether it is there."""

    host: str
    pid: int
    pid_namespace: str
    started: float  # the process's start time: a later process under a reused pid is not the holder
    since: str  # when it took the lock (UTC), for the messages
    token: str  # this acquisition: a holder removes only its own lock

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), _pid_namespace(), psutil.Process().create_time(),
                   datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), uuid.uuid4().hex)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    def running(self) -> Optional[bool]:
        """Whether the holder's process still runs; None where it cannot be looked up (another node)."""
        if (self.host, self.pid_namespace) != (socket.gethostname(), _pid_namespace()):
            return None
        try:
            process = psutil.Process(self.pid)
            return process.status() != psutil.STATUS_ZOMBIE and process.create_time() == self.started
        except psutil.NoSuchProcess:
            return False


@dataclass(frozen=True)
class _Seen:
    """A lock file as a waiter found it."""

    holder: Optional[Holder]  # None: not a lock file this module wrote
    signature: tuple[str, int]  # its content and mtime: a new holder or a heartbeat changes it


def _look(path: Path) -> Optional[_Seen]:
    """The lock at `path` now, None if there is none. The file is opened, not stat'ed: NFS
    revalidates a file's attributes on open (close-to-open), so the mtime is the last heartbeat."""
    try:
        with open(path) as handle:
            text = handle.read()
            mtime = os.fstat(handle.fileno()).st_mtime_ns
    except FileNotFoundError:
        return None
    try:
        holder: Optional[Holder] = Holder(**json.loads(text))
    except (ValueError, TypeError):
        holder = None
    return _Seen(holder, (text, mtime))


def _create(path: Path, holder: Holder) -> bool:
    """Create `path` holding `holder` unless it exists; True if this call created it."""
    private = path.with_name(f"{path.name}.{holder.host}.{holder.pid}.{holder.token}")
    private.write_text(json.dumps(asdict(holder)))
    try:
        os.link(private, path)
        return True
    except FileExistsError:
        return os.stat(private).st_nlink == 2  # NFS: a link whose reply was lost is resent: EEXIST
    finally:
        private.unlink()


def _say(line: str) -> None:
    print(f"[harness] {line}", file=sys.stderr, flush=True)


class SharedLock:
    """`with SharedLock(target, "making"):` holds `target`'s lock for the block, after waiting for
    (or taking over from a dead) holder; one line says whom it waits for. With `wait=False` a
    holder known to be there is refused with one line instead (InputError): at once on its own
    host, at its next heartbeat from another node."""

    def __init__(self, target: Path, action: str = "making", wait: bool = True,
                 stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S,
                 poll_s: float = POLL_S) -> None:
        self.target, self.action, self.wait = Path(target), action, wait
        self.path = lock_path(self.target)
        self.stale_after_s, self.heartbeat_s, self.poll_s = stale_after_s, heartbeat_s, poll_s
        self._me: Holder
        self._first_seen: dict[Path, tuple[tuple[str, int], float]] = {}
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.path}")

    def __enter__(self) -> SharedLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._me = Holder.me()
        announced = None
        while not _create(self.path, self._me):
            seen = _look(self.path)
            if seen is None:
                continue  # released in between: try again at once
            there = self._there(self.path, seen)
            if there is False:
                self._take_over(seen)
                continue
            if there and not self.wait:
                raise InputError(f"{self.target}: {seen.holder or 'another process'} is already {self.action} "
                                 f"it (lock {self.path}); wait until that process ends, or stop it")
            if seen.signature[0] != announced:
                announced = seen.signature[0]
                _say(f"waiting for {seen.holder or 'another process'} {self.action} {self.target} "
                     f"(since {seen.holder.since if seen.holder else 'unknown'}; lock {self.path}) ...")
            time.sleep(self.poll_s)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._heartbeat.join()
        seen = _look(self.path)
        if seen is not None and seen.holder is not None and seen.holder.token == self._me.token:
            self.path.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                return  # taken over as stale (this process was stopped too long): nothing to keep alive

    def _there(self, path: Path, seen: _Seen) -> Optional[bool]:
        """Whether the holder of the lock at `path` is there: True if its process runs or its lock
        changed since this waiter first saw it (a heartbeat), False if it is gone (the lock may be
        taken over), None while another node's lock has been seen unchanged for less than
        `stale_after_s`."""
        if not seen.signature[0]:
            return False  # empty: the fcntl lock files of older harness versions, never one of these
        running = seen.holder.running() if seen.holder else None
        if running is not None:
            return running
        now = time.monotonic()
        signature, since = self._first_seen.setdefault(path, (seen.signature, now))
        if signature != seen.signature:
            self._first_seen[path] = (seen.signature, now)
            return True
        return None if now - since < self.stale_after_s else False

    def _take_over(self, seen: _Seen) -> None:
        """Remove the stale lock `seen`, if it is still that one, under the `.break` lock."""
        guard = self.path.with_name(f"{self.path.name}.break")
        if not _create(guard, self._me):
            breaking = _look(guard)
            if breaking is not None and self._there(guard, breaking) is False:
                guard.unlink(missing_ok=True)  # its maker died within its milliseconds
            time.sleep(self.poll_s)
            return
        try:
            if (now := _look(self.path)) is not None and now.signature == seen.signature:
                _say(f"{self._why_stale(seen)}: taking it over")
                self.path.unlink()
        finally:
            guard.unlink()

    def _why_stale(self, seen: _Seen) -> str:
        """Why the lock `seen` may be taken over, for the one line that says so."""
        if not seen.signature[0]:
            return f"{self.path} is an empty lock file (older harness versions left these)"
        holding = f"{seen.holder or 'the process'} {self.action} {self.target}"
        if seen.holder and seen.holder.running() is False:
            return f"{holding} is gone, its lock is {self.path}"
        return f"{holding} has not touched its lock {self.path} for {self.stale_after_s:g} s"


def make_once(target: Path, complete: Callable[[], bool], make: Callable[[], Any], action: str = "making") -> Path:
    """Run `make` to make `target` unless `complete()` says it is there: one process makes it, the
    others wait for it and then use it (`complete` is asked again under the lock: the wait may
    have been for exactly this). An incomplete `target` folder, half made by a maker that died or
    made to another recipe, is removed first."""
    target = Path(target)
    if not complete():
        with SharedLock(target, action):
            if not complete():
                if target.is_dir():
                    shutil.rmtree(target)
                make()
    return target
