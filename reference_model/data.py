"""Reading the real CLIC calorimeter files (3dgan-reference.md section 1) and the reference preprocessing.

Two layouts exist and are told apart by their keys and shapes:
  fixed angle: `ECAL` (N, 25, 25, 25) in GeV, primary energy in `target[:, 1]` (GeV);
  variable angle: `ECAL` (N, 51, 51, 25) in GeV x 50, `energy` (GeV), `theta` (rad, else `mtheta`);
other keys (`eta`, `sum`, `HCAL`, `pdgID`, ...) are tolerated. Everything leaves this module
checked (finite, non-negative cells; finite, positive energies) and, for physics, in GeV as
`Showers`; the training preprocessing (section 1.5) turns stored units into the batch contract
of `reference_model.training`. Any unreadable or malformed input is an `InputError` naming the
file and the problem.
"""
from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from reference_model import transforms
from reference_model.errors import InputError
from reference_model.showers import ANGLE, FIXED, IMAGE_SHAPES, Showers

H5_SUFFIXES = (".h5", ".hdf5")
READ_BLOCK_EVENTS = 256  # events per read when scanning whole files
SUM_CHECK_EVENTS = 8  # events used to confirm a file's `sum` key is the raw ECAL sum


@dataclass(frozen=True)
class FileRange:
    """Events [start, stop) of one file; a by-event split of a single file uses two of these."""

    path: Path
    start: int = 0
    stop: Optional[int] = None  # None: to the end of the file

    def __str__(self) -> str:
        stop = "" if self.stop is None else self.stop
        return f"{self.path}[{self.start}:{stop}]"


DataSource = Union[str, os.PathLike, FileRange]
DataSources = Union[DataSource, Sequence[DataSource]]


# ------------------------------------------------------------------------------------------------
# finding and splitting files
# ------------------------------------------------------------------------------------------------
def list_files(path: DataSources) -> list[Path | FileRange]:
    """The data files named by a directory, a file, a glob or a list of them, in sorted order.

    Sorting is plain lexicographic on the path, as the originals' `sorted(glob(...))`.
    """
    if isinstance(path, (list, tuple)):
        files = [f for p in path for f in list_files(p)]
        if not files:
            raise InputError("no data files given; pass a directory, an .h5 file or a glob")
        return files
    if isinstance(path, FileRange):
        return [path]
    text = os.fspath(path)
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not files:
            raise InputError(f"{text}: the pattern matches no files; check the path or make data "
                             "with `harness data synth`")
        return files
    p = Path(text)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in H5_SUFFIXES and f.is_file()
                       and not f.name.startswith("."))
        if not files:
            raise InputError(f"{p}: the directory holds no .h5 files; point at the EleEscan "
                             "directory or make data with `harness data synth --out DIR`")
        return files
    if p.is_file():
        return [p]
    raise InputError(f"{p}: no such file or directory; pass a data directory, an .h5 file or a glob")


def split_files(files: Sequence[Path | FileRange], train_fraction: float = 0.9
                ) -> tuple[list[Path | FileRange], list[Path | FileRange]]:
    """Train/test split by sorted file order, as the originals' `DivideFiles`.

    The first round(f n) files train (rounding half up, as Python 2 did), the rest test; both
    sides keep at least one file. A single file cannot be split by file, so it is split by
    event instead: its first round(f N) events train and the rest test.
    """
    if not 0.0 < train_fraction < 1.0:
        raise InputError(f"train fraction {train_fraction}: must lie strictly between 0 and 1")
    files = list(files)
    if not files:
        raise InputError("no data files to split; pass a directory, an .h5 file or a glob")
    if len(files) == 1:
        only = files[0]
        path, start, stop = source_range(only)
        with EventFile(path) as f:
            stop = f.n_events if stop is None else min(stop, f.n_events)
        n = stop - start
        if n < 2:
            raise InputError(f"{only}: {n} event(s) cannot be split into training and test events")
        n_train = min(max(math.floor(train_fraction * n + 0.5), 1), n - 1)
        return [FileRange(path, start, start + n_train)], [FileRange(path, start + n_train, stop)]
    n_train = min(max(math.floor(train_fraction * len(files) + 0.5), 1), len(files) - 1)
    return files[:n_train], files[n_train:]


def source_range(source: Path | FileRange) -> tuple[Path, int, Optional[int]]:
    if isinstance(source, FileRange):
        return Path(source.path), source.start, source.stop
    return Path(source), 0, None


def describe_sources(source: DataSources) -> str:
    """`source` as a message names it: a path, or files as their folder and first and last names
    (`EleEscan_1_007.h5..EleEscan_1_009.h5 (3 files)`), never a Python list of paths."""
    if not isinstance(source, (list, tuple)):
        return str(source)
    files = [Path(str(item)) for item in source]  # a FileRange reads path[start:stop]
    folders = {file.parent for file in files}
    if len(folders) != 1:
        return ", ".join(map(str, files))
    names = files[0].name if len(files) == 1 else f"{files[0].name}..{files[-1].name} ({len(files)} files)"
    return f"{folders.pop()}/{names}"


# ------------------------------------------------------------------------------------------------
# one file
# ------------------------------------------------------------------------------------------------
class EventFile:
    """An open EleEscan file: its geometry, its event count and checked reads in stored units.

    Stored units are the file's own: GeV for the fixed layout, GeV x 50 for the angle layout.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise InputError(f"{self.path}: not a readable HDF5 file ({_first_line(err)}); "
                             "re-copy it or remove it from the data directory") from None
        try:
            self.geometry = self._detect()
        except InputError:
            self._h5.close()
            raise

    # -- format ----------------------------------------------------------------------------
    def _detect(self) -> str:
        keys = set(self._h5.keys())
        if "ECAL" not in keys:
            raise InputError(f"{self.path}: missing key 'ECAL' (has {_key_list(keys)}); "
                             "not a CLIC EleEscan calorimeter file")
        ecal = self._h5["ECAL"]
        shape = tuple(ecal.shape[1:])
        if ecal.ndim != 4 or shape not in IMAGE_SHAPES.values():
            raise InputError(f"{self.path}: ECAL has shape {ecal.shape}; expected (N, 25, 25, 25) "
                             "(fixed angle) or (N, 51, 51, 25) (variable angle)")
        self.n_events = int(ecal.shape[0])
        if self.n_events == 0:
            raise InputError(f"{self.path}: ECAL holds no events")
        if shape == IMAGE_SHAPES[FIXED]:
            if "target" not in keys:
                hint = " ('energy' is not the fixed-angle layout's label)" if "energy" in keys else ""
                raise InputError(f"{self.path}: fixed-angle ECAL but missing key 'target'{hint}; "
                                 "the primary energy must be in target[:, 1]")
            target = self._h5["target"]
            if target.ndim != 2 or target.shape[0] != self.n_events or target.shape[1] < 2:
                raise InputError(f"{self.path}: 'target' has shape {target.shape}; expected "
                                 f"({self.n_events}, k>=2) with the energy in column 1")
            return FIXED
        if "energy" not in keys:
            raise InputError(f"{self.path}: variable-angle ECAL but missing key 'energy'")
        self._angle_key = "theta" if "theta" in keys else "mtheta" if "mtheta" in keys else None
        if self._angle_key is None:
            raise InputError(f"{self.path}: variable-angle ECAL but missing key 'theta' (or 'mtheta')")
        for key in ("energy", self._angle_key):
            if self._h5[key].size != self.n_events:
                raise InputError(f"{self.path}: '{key}' has shape {self._h5[key].shape}; expected "
                                 f"one value per event ({self.n_events})")
        return ANGLE

    # -- reads -----------------------------------------------------------------------------
    def energies(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Primary energies in GeV, checked finite and positive (cheap: no images are read)."""
        stop = self.n_events if stop is None else stop
        if self.geometry == FIXED:
            energy = self._read("target", start, stop)[:, 1]
        else:
            energy = self._read("energy", start, stop).reshape(-1)
        energy = energy.astype(np.float32)
        if not np.all(np.isfinite(energy)) or np.any(energy <= 0):
            bad = start + int(np.flatnonzero(~(np.isfinite(energy) & (energy > 0)))[0])
            raise InputError(f"{self.path}: primary energy of event {bad} is {energy[bad - start]} "
                             "(NaN, infinite or not positive); the file is corrupt")
        return energy

    def angles(self, start: int = 0, stop: Optional[int] = None) -> Optional[np.ndarray]:
        """Incidence angles in radians (angle layout), checked to lie in (0, pi); None if fixed."""
        if self.geometry == FIXED:
            return None
        stop = self.n_events if stop is None else stop
        theta = self._read(self._angle_key, start, stop).reshape(-1).astype(np.float32)
        if not np.all(np.isfinite(theta) & (theta > 0) & (theta < np.pi)):
            raise InputError(f"{self.path}: '{self._angle_key}' holds values outside (0, pi) rad "
                             "or NaN; the file is corrupt or not in radians")
        return theta

    def images(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """ECAL cells in stored units, float32, checked finite and non-negative."""
        stop = self.n_events if stop is None else stop
        cells = np.asarray(self._read("ECAL", start, stop), dtype=np.float32)
        if not np.all(np.isfinite(cells)):
            raise InputError(f"{self.path}: ECAL holds NaN or infinite cells in events "
                             f"{start}-{stop - 1}; the file is corrupt")
        if cells.size and cells.min() < 0:
            raise InputError(f"{self.path}: ECAL holds negative cell energies in events "
                             f"{start}-{stop - 1}; deposited energies cannot be negative")
        return cells

    def showers(self, start: int = 0, stop: Optional[int] = None) -> Showers:
        """Events [start, stop) as checked `Showers` in GeV."""
        cells = self.images(start, stop)
        if self.geometry == ANGLE:
            cells = cells / np.float32(transforms.ANGLE_DSCALE)
        return Showers(cells, self.energies(start, stop), self.angles(start, stop))

    def raw_sums(self) -> np.ndarray:
        """Per-event ECAL sum in stored units: the `sum` key when it is that, else computed."""
        if "sum" in self._h5 and self._h5["sum"].size == self.n_events:
            stored = self._read("sum", 0, self.n_events).reshape(-1).astype(np.float64)
            k = min(SUM_CHECK_EVENTS, self.n_events)
            computed = self.images(0, k).sum(axis=(1, 2, 3), dtype=np.float64)
            if np.allclose(stored[:k], computed, rtol=1e-3, atol=1e-6):
                return stored
        return np.concatenate([
            self.images(i, min(i + READ_BLOCK_EVENTS, self.n_events)).sum(axis=(1, 2, 3), dtype=np.float64)
            for i in range(0, self.n_events, READ_BLOCK_EVENTS)])

    def _read(self, key: str, start: int, stop: int) -> np.ndarray:
        try:
            return self._h5[key][start:stop]
        except (OSError, RuntimeError) as err:
            raise InputError(f"{self.path}: cannot read '{key}' events {start}-{stop - 1} "
                             f"({_first_line(err)}); the file is truncated or corrupt") from None

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "EventFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _key_list(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    return ", ".join(repr(k) for k in keys) if keys else "no keys"


def detect_format(path: str | os.PathLike) -> str:
    """FIXED or ANGLE for one file, from its keys and shapes; InputError for anything else."""
    with EventFile(path) as f:
        return f.geometry


def read_showers(path: DataSource, max_events: Optional[int] = None) -> Showers:
    """One file (or file range) as checked `Showers` in GeV, at most `max_events` of them."""
    path, start, stop = source_range(path)
    with EventFile(path) as f:
        stop = f.n_events if stop is None else min(stop, f.n_events)
        if max_events is not None:
            stop = min(stop, start + max_events)
        return f.showers(start, stop)


def load_showers(path_or_files: DataSources, max_events: Optional[int] = None) -> Showers:
    """Showers in GeV from a directory, glob, file or list, in sorted file order.

    Files are read until `max_events` are collected, so only what is asked for is loaded.
    All files must share one geometry.
    """
    if max_events is not None and max_events < 1:
        raise InputError(f"max events {max_events}: must be at least 1")
    parts: list[Showers] = []
    geometry, have = None, 0
    for source in list_files(path_or_files):
        if max_events is not None and have >= max_events:
            break
        part = read_showers(source, None if max_events is None else max_events - have)
        if geometry is not None and part.geometry != geometry:
            raise InputError(f"{source}: {part.geometry}-angle file among {geometry}-angle files; "
                             "keep one geometry per data set")
        geometry = part.geometry
        parts.append(part)
        have += len(part)
    theta = None if parts[0].theta_rad is None else np.concatenate([p.theta_rad for p in parts])
    return Showers(np.concatenate([p.ecal_gev for p in parts]),
                   np.concatenate([p.energy_gev for p in parts]), theta)


# ------------------------------------------------------------------------------------------------
# training preprocessing (section 1.5) -> the batch contract of reference_model.training
# ------------------------------------------------------------------------------------------------
def angle_keep_mask(raw_sums: np.ndarray) -> np.ndarray:
    """The angle set's event selection: more than 0.2 GeV deposited (sum > 10 raw units)."""
    return np.asarray(raw_sums) > transforms.ANGLE_MIN_SUM_RAW


def training_arrays(images: np.ndarray, energy_gev: np.ndarray, theta_rad: Optional[np.ndarray],
                    geometry: str) -> dict[str, np.ndarray]:
    """Stored-unit events to the training batch contract (per event, leading axis N), float32.

    fixed: cells below 1e-6 GeV zeroed, x100; ecal = sum of that image; energy = E/100.
    angle: ecal = raw (GeV x 50) sum before the power; image = raw ** 0.85; energy = E/100;
    theta in rad. The angle selection (`angle_keep_mask`) is the caller's, as it changes N.
    """
    energy = (np.asarray(energy_gev, np.float32) / np.float32(transforms.ENERGY_SCALE))[:, None]
    if geometry == FIXED:
        image = transforms.fixed_images_from_gev(images)
        ecal = image.sum(axis=(1, 2, 3), dtype=np.float64).astype(np.float32)[:, None]
        return {"image": image[..., None], "energy": energy, "ecal": ecal}
    ecal = np.asarray(images).sum(axis=(1, 2, 3), dtype=np.float64).astype(np.float32)[:, None]
    image = transforms.angle_images_from_raw(images)
    theta = np.asarray(theta_rad, np.float32)[:, None]
    return {"image": image[..., None], "energy": energy, "theta": theta, "ecal": ecal}
