"""Which quality-thresholds versions exist: one file hash per version (benchmark/thresholds/registry.json).

A log records `<version>+sha256.<first 12 hex digits of the thresholds file>`. The version name
alone cannot say which limits were used once a file has been edited without a new name (that
happened to `3dgan-quality-v1`), so the registry pins every version to exactly one sha256 and
keeps every pair ever published. A changed thresholds file needs a new version and a new entry
(tests/harness/test_thresholds_registry.py fails until it has one), and `harness check` refuses a
logged pair the registry does not know.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import benchmark
from reference_model.errors import InputError

REGISTRY = Path(benchmark.__file__).resolve().parent / "thresholds" / "registry.json"
HASH_DIGITS = 12  # what a log records of the file's sha256 (benchmark.quality.Thresholds.version)


@dataclass(frozen=True)
class Verdict:
    """What the registry says of one logged pair."""

    known: bool  # a registered version with its own hash
    collision: Optional[str] = None  # why a pair that is not a version is nevertheless on record
    problem: str = ""  # one line: why the pair is refused

    @property
    def recorded(self) -> bool:
        return self.known or self.collision is not None


@lru_cache(maxsize=None)
def load_registry(path: Path = REGISTRY) -> dict:
    try:
        registry = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: thresholds registry missing; restore it from the repository") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); restore it from the repository") from None
    if not isinstance(registry.get("versions"), dict):
        raise InputError(f"{path}: no 'versions' table; restore it from the repository")
    return registry


def next_version(benchmark: str, registry: Optional[dict] = None) -> str:
    """`<benchmark>-quality-v<N>` for the first N past every registered one, release candidates
    included: a new calibration never takes a published version's name, nor the name a
    candidate is promoted to."""
    registry = registry or load_registry()
    pattern = re.compile(rf"{re.escape(benchmark)}-quality-v(\d+)(-rc)?")
    taken = [int(m.group(1)) for name in registry["versions"] if (m := pattern.fullmatch(name))]
    return f"{benchmark}-quality-v{max(taken, default=0) + 1}"


def logged_pair(version: str, sha256: str) -> str:
    """The string a log records for a thresholds file (as benchmark.quality.Thresholds.version)."""
    return f"{version}+sha256.{sha256[:HASH_DIGITS]}"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def judge(logged: object, registry: Optional[dict] = None) -> Verdict:
    """Is a logged `quality_thresholds` value a registered version/hash pair?"""
    registry = registry or load_registry()
    if not isinstance(logged, str) or "+sha256." not in logged:
        return Verdict(False, problem=f"quality_thresholds {logged!r} is not '<version>+sha256.<hash>'")
    version, digest = logged.split("+sha256.", 1)
    entry = registry["versions"].get(version)
    if entry is not None and len(digest) == HASH_DIGITS and entry["sha256"].startswith(digest):
        return Verdict(True)
    collision = registry.get("collisions", {}).get(logged)
    if collision is not None:
        return Verdict(False, collision=collision,
                       problem=f"quality_thresholds {logged!r} is not a registered version: {collision}")
    if entry is not None:
        return Verdict(False, problem=f"quality_thresholds {logged!r}: version {version} is registered with "
                                      f"sha256 {entry['sha256'][:HASH_DIGITS]}, not {digest} (a thresholds file "
                                      "changed without a new version; see benchmark/thresholds/registry.json)")
    return Verdict(False, problem=f"quality_thresholds {logged!r}: unknown version (not in "
                                  "benchmark/thresholds/registry.json)")


def unregistered_files(directory: Path = REGISTRY.parent, registry: Optional[dict] = None) -> list[str]:
    """Thresholds files whose (version, sha256) is not in the registry: one line each."""
    registry = registry or load_registry()
    problems = []
    for path in sorted(Path(directory).glob("*.json")):
        if path.name == REGISTRY.name:
            continue
        version = json.loads(path.read_text()).get("version")
        entry = registry["versions"].get(version)
        digest = file_sha256(path)
        if entry is None:
            problems.append(f"{path.name}: version {version!r} is not registered; add it to {REGISTRY.name}")
        elif entry["sha256"] != digest or entry["file"] != path.name:
            problems.append(f"{path.name}: changed since {version} was registered ({entry['file']}, sha256 "
                            f"{entry['sha256'][:HASH_DIGITS]}); give it a new version and register that")
    return problems


def register_version(path: Path, registry_path: Optional[Path] = None) -> str:
    """Register the thresholds file at `path` under the version it declares and return the pair a
    log will record. A new version only: a published one is never pointed at another file."""
    path, registry_path = Path(path), Path(registry_path or REGISTRY)
    version, digest = json.loads(path.read_text())["version"], file_sha256(path)
    registry = json.loads(registry_path.read_text())
    entry = registry["versions"].get(version)
    if entry is not None and entry != {"file": path.name, "sha256": digest}:
        raise InputError(f"{version} is already registered ({entry['file']}, sha256 "
                         f"{entry['sha256'][:HASH_DIGITS]}); a published version is never replaced")
    registry["versions"][version] = {"file": path.name, "sha256": digest}
    _write_registry(registry_path, registry)
    return logged_pair(version, digest)


def set_target(benchmark: str, version: str, registry_path: Optional[Path] = None) -> None:
    """Make a registered, submittable version the benchmark's quality target: the one pointer of
    the registry that moves (benchmark.quality.thresholds_path follows it)."""
    registry_path = Path(registry_path or REGISTRY)
    registry = json.loads(registry_path.read_text())
    entry = registry["versions"].get(version)
    if entry is None:
        raise InputError(f"{version} is not registered; register its file first")
    document = json.loads((registry_path.parent / entry["file"]).read_text())
    if document.get("benchmark") != benchmark or document.get("smoke") or not document.get("submittable"):
        raise InputError(f"{version} is not a submittable {benchmark} target; it cannot become one")
    registry.setdefault("targets", {})[benchmark] = version
    _write_registry(registry_path, registry)


def _write_registry(registry_path: Path, registry: dict) -> None:
    """Whole or not at all, in the file's own layout; the cached copy is dropped."""
    from reference_model.atomic_files import write_text_atomic

    write_text_atomic(registry_path, json.dumps(registry, indent=1) + "\n")
    load_registry.cache_clear()
