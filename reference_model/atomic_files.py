"""Files that are whole or absent: written to a temporary name, synced, renamed into place.

Results, checkpoint sidecars and the campaign's curve all use this, so a crash or a full disk
never leaves a half-written file that a later run would read as real.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` so readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from the other users of a cluster
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_file_atomic(path: Path, write: Callable[[Path], Any], suffix: Optional[str] = None) -> Path:
    """Let `write` fill a temporary file beside `path` (same `suffix`, for writers that insist on
    one), then rename it into place: for files another library writes (figures, weights)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, payload: Any, sort_keys: bool = False) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=sort_keys, default=str) + "\n")
