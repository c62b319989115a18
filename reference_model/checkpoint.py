"""Generator checkpoints that can be trusted: weights plus a sidecar recording the benchmark,
the architecture fingerprint and the SHA-256 of the weights, all checked at load time.

A checkpoint is `<stem>.weights.h5` with `<stem>.json` beside it. `load_generator` refuses a
file whose hash or architecture does not match, so a benchmark can never silently run
weights other than the ones it claims.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from reference_model.atomic_files import write_file_atomic, write_json_atomic
from reference_model.errors import InputError
from reference_model.specs import ModelSpec, get_spec

WEIGHTS_SUFFIX = ".weights.h5"
FROZEN_DIR = Path(__file__).with_name("checkpoints")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(weights: Path) -> Path:
    return weights.with_name(weights.name[: -len(WEIGHTS_SUFFIX)] + ".json")


def frozen_checkpoint(benchmark: str) -> Path:
    """Where the shipped reference generator of a benchmark lives."""
    return FROZEN_DIR / f"{benchmark}-generator{WEIGHTS_SUFFIX}"


def save_generator(path: Path, generator, spec: ModelSpec, metadata: Optional[dict] = None) -> Path:
    """Write weights and sidecar atomically (temp files renamed into place)."""
    from reference_model.fingerprint import architecture_fingerprint

    path = Path(path)
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise InputError(f"checkpoint name {path.name!r} must end with {WEIGHTS_SUFFIX}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(path, lambda tmp: generator.save_weights(str(tmp)), suffix=WEIGHTS_SUFFIX)
    card = {"benchmark": spec.benchmark, "model": spec.name,
            "fingerprint": architecture_fingerprint(generator), "sha256": sha256_of(path),
            **(metadata or {})}
    write_json_atomic(sidecar_path(path), card, sort_keys=True)
    return path


def resolve_checkpoint(path: Path) -> Path:
    """Accept the weights file or a directory holding exactly one generator checkpoint."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob(f"*generator*{WEIGHTS_SUFFIX}")) or sorted(path.glob(f"*{WEIGHTS_SUFFIX}"))
        if len(found) != 1:
            raise InputError(f"{path}: expected one *{WEIGHTS_SUFFIX} generator checkpoint, found {len(found)}")
        path = found[0]
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise InputError(f"{path}: not a generator checkpoint (expected a *{WEIGHTS_SUFFIX} file)")
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    return path


def read_card(path: Path) -> dict[str, Any]:
    weights = resolve_checkpoint(path)
    card_path = sidecar_path(weights)
    if not card_path.is_file():
        raise InputError(f"{weights}: sidecar {card_path.name} missing; re-export the checkpoint "
                         "with save_generator")
    try:
        return json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{card_path}: corrupt checkpoint sidecar ({err})") from None


def verified_card(path: Path) -> dict[str, Any]:
    """The sidecar of a checkpoint whose weights still hash to what it records: a truncated or
    changed file is refused here, in one line, before anything is built or measured with it."""
    weights = resolve_checkpoint(path)
    card = read_card(weights)
    actual = sha256_of(weights)
    if actual != card.get("sha256"):
        raise InputError(f"{weights}: SHA-256 {actual[:12]}... does not match the recorded "
                         f"{str(card.get('sha256'))[:12]}...; the file is corrupt or was changed")
    return card


def load_generator(path: Path) -> tuple[ModelSpec, Any]:
    """Build the reference generator and load verified weights into it."""
    from reference_model.fingerprint import architecture_fingerprint

    weights = resolve_checkpoint(path)
    card = verified_card(weights)
    spec = get_spec(card.get("benchmark", ""))
    generator = spec.build_generator()
    if architecture_fingerprint(generator) != card.get("fingerprint"):
        raise InputError(f"{weights}: trained for a different architecture (fingerprint mismatch)")
    try:
        generator.load_weights(str(weights))
    except Exception as err:  # h5py/keras raise many types for a damaged file
        raise InputError(f"{weights}: cannot load weights ({type(err).__name__}: {err})") from None
    return spec, generator

