"""Which code produced a record: the suite's git commit, for calibrations and campaign sessions."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

SUITE_ROOT = Path(__file__).resolve().parent.parent


def suite_relative(path: Path | str) -> str:
    """A path inside the suite as it reads from the suite's root, so a record names the same file
    on every machine; a path outside the suite stays absolute."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(SUITE_ROOT)) if resolved.is_relative_to(SUITE_ROOT) else str(resolved)


def suite_commit() -> Optional[str]:
    """The checked-out commit, with "-dirty" when tracked files differ from it; None outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(SUITE_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if not commit:
            return None
        dirty = subprocess.run(["git", "-C", str(SUITE_ROOT), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":!benchmark/convergence"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit
