"""A physics-based stand-in for the CLIC Geant4 electron showers (3dgan-reference.md section 7).

The real `EleEscan_*.h5` files cannot be downloaded here, but tests, CI and the embedded default
run must still train and judge on showers with the real data's character: the same layouts and
units, ~20% occupied cells, seven-plus decades of cell energies, the fitted sampling fraction, a
shower maximum that deepens with ln E and an incidence angle that tilts the shower along y.

Per event (all vectorised over a block of events):
  1. Longitudinal: a Gamma profile whose depth of maximum T and shape alpha fluctuate as
     correlated log-normals with the GFlash (Grindhammer-Peters) constants, shifted for a
     sampling calorimeter; integrated over each tungsten plate (depths along the shower axis
     grow as 1/sin(theta)). Each silicon layer samples the energy density at its plate, so a
     thick plate deposits twice the energy but shows the same density.
  2. Normalisation: the window sum follows the data-driven SF(E) fit on average; an event that
     leaks more out of the back shows less (its response over the mean response at its energy).
  3. Sampling fluctuations: each layer's energy is smeared with GFlash's Gamma law, 11%/sqrt(E).
  4. Lateral: GFlash's two-component radial profile (core R_C, tail R_T, weight p, all functions
     of depth), integrated exactly over every 5.1 mm cell; the axis drifts along y by cot(theta)
     per mm of depth, and the profile stretches by 1/sin(theta) in y.
  5. Cells: a compound Poisson-Gamma law: N ~ Poisson(mean / e_dep) deposits, each Gamma
     distributed with shape k; their sum is exactly Gamma(N k). It leaves most halo cells empty
     and gives single soft deposits the long low-energy tail of real showers.
  6. The window is centred on the shower's barycentre cell (uniform sub-cell offset).

Events are made in fixed blocks of BLOCK_EVENTS with a generator keyed by (seed, block), so a
data set is identical for a seed however it is split into files or calls.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from scipy import special

from reference_model import geometry as geo
from reference_model import transforms
from reference_model.errors import InputError
from reference_model.showers import ANGLE, FIXED, GEOMETRIES, IMAGE_SHAPES, Showers

BLOCK_EVENTS = 50
EVENTS_PER_FILE = 10_000  # as the real files
DEFAULT_ENERGY_RANGE = {FIXED: (10.0, 500.0), ANGLE: (2.0, 500.0)}  # GeV (sections 1.2, 1.3)
DEFAULT_THETA_RANGE_DEG = (60.0, 120.0)
ENERGY_LIMITS_GEV = (1.0, 1000.0)  # where the SF fit and the GFlash constants are used
THETA_LIMITS_DEG = (45.0, 135.0)  # beyond these the tilted shower leaves the 51-cell window
ELECTRON_PDG_ID = 11

# GFlash longitudinal constants (G4 GFlashSamplingShowerParameterisation, homogeneous getters).
T1 = -0.812
ALPHA_A1, ALPHA_A2, ALPHA_A3 = 0.81, 0.458, 2.26
SIGMA_LN_T = (-1.4, 1.26)  # sigma(ln T) = 1 / (a + b ln y), capped at SIGMA_CAP
SIGMA_LN_ALPHA = (-0.58, 0.86)
SIGMA_CAP = 0.5
RHO = (0.705, -0.023)  # rho(ln T, ln alpha) = a + b ln y
MIN_T, MIN_ALPHA = 1.0, 1.1
SAMPLING_SIGMA_SQRT_GEV = 0.11  # ApplySampling: E' = Gamma(E / s^2, 1) s^2

# Cell model (stand-in choices, tuned to the data characteristics the slides quote).
DEPOSIT_SHAPE = 1.0  # Gamma shape k of one deposit (exponential): CV 1, soft low tail
MEAN_DEPOSIT_GEV = 2.0e-5  # sets the occupancy (~20% of fixed-window cells)


# ------------------------------------------------------------------------------------------------
# argument checks
# ------------------------------------------------------------------------------------------------
def _check_arguments(n_events: int, geometry: str, seed: int, energy_range: Optional[tuple],
                     theta_range_deg: tuple) -> tuple[tuple[float, float], tuple[float, float]]:
    if geometry not in GEOMETRIES:
        raise InputError(f"--geometry {geometry!r}: unknown; choose one of {', '.join(GEOMETRIES)}")
    if n_events < 1:
        raise InputError(f"--events {n_events}: must be at least 1")
    if seed < 0:
        raise InputError(f"--seed {seed}: must be a non-negative integer")
    lo, hi = DEFAULT_ENERGY_RANGE[geometry] if energy_range is None else map(float, energy_range)
    if not ENERGY_LIMITS_GEV[0] <= lo <= hi <= ENERGY_LIMITS_GEV[1]:
        raise InputError(f"--energy-range {lo:g} {hi:g}: need {ENERGY_LIMITS_GEV[0]:g} <= LO <= HI "
                         f"<= {ENERGY_LIMITS_GEV[1]:g} GeV (the range the physics constants cover)")
    tlo, thi = map(float, theta_range_deg)
    if not THETA_LIMITS_DEG[0] <= tlo <= thi <= THETA_LIMITS_DEG[1]:
        raise InputError(f"theta range {tlo:g}-{thi:g} deg: need {THETA_LIMITS_DEG[0]:g} <= LO <= HI "
                         f"<= {THETA_LIMITS_DEG[1]:g} degrees")
    return (lo, hi), (tlo, thi)


# ------------------------------------------------------------------------------------------------
# longitudinal profile
# ------------------------------------------------------------------------------------------------
def _mean_log_parameters(energy_gev: np.ndarray) -> tuple[np.ndarray, ...]:
    """<ln T>, <ln alpha>, their widths and correlation for a sampling W/Si calorimeter."""
    ln_y = np.log(energy_gev * 1e3 / geo.CRITICAL_ENERGY_MEV)
    t_hom = ln_y + T1
    alpha_hom = ALPHA_A1 + (ALPHA_A2 + ALPHA_A3 / geo.Z_TUNGSTEN) * ln_y
    fs, e_hat = geo.SAMPLING_FS, geo.SAMPLING_E_HAT
    t_sam = np.maximum(t_hom - 0.55 / fs - 0.69 * (1.0 - e_hat), MIN_T)
    alpha_sam = np.maximum(alpha_hom - 0.476 / fs, MIN_ALPHA)
    sigma_t = 1.0 / np.maximum(SIGMA_LN_T[0] + SIGMA_LN_T[1] * ln_y, 1.0 / SIGMA_CAP)
    sigma_a = 1.0 / np.maximum(SIGMA_LN_ALPHA[0] + SIGMA_LN_ALPHA[1] * ln_y, 1.0 / SIGMA_CAP)
    rho = np.clip(RHO[0] + RHO[1] * ln_y, -1.0, 1.0)
    return np.log(t_sam), np.log(alpha_sam), sigma_t, sigma_a, rho


def _shower_depth_parameters(energy_gev: np.ndarray, r1: np.ndarray, r2: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(T, alpha) from standard normals (r1, r2), GFlash's correlated log-normal recipe."""
    mean_ln_t, mean_ln_a, sigma_t, sigma_a, rho = _mean_log_parameters(energy_gev)
    plus, minus = np.sqrt((1.0 + rho) / 2.0), np.sqrt((1.0 - rho) / 2.0)
    t_max = np.exp(mean_ln_t + sigma_t * (plus * r1 + minus * r2))
    alpha = np.exp(mean_ln_a + sigma_a * (plus * r1 - minus * r2))
    return np.maximum(t_max, MIN_T), np.maximum(alpha, MIN_ALPHA)


def _layer_response(t_max: np.ndarray, alpha: np.ndarray, sin_theta: np.ndarray) -> np.ndarray:
    """Energy density sampled by each silicon layer, in units of the shower energy, (..., 25).

    The fraction deposited in plate l along the axis, divided by the plate's thickness relative
    to a thin plate: what a silicon layer behind it sees.
    """
    beta = (alpha - 1.0) / t_max
    edges = geo.LAYER_EDGES_X0 / sin_theta[..., None]
    cdf = special.gammainc(alpha[..., None], beta[..., None] * edges)
    return np.diff(cdf, axis=-1) * (geo.LAYER_X0[0] / geo.LAYER_X0)


@functools.lru_cache(maxsize=1)
def _mean_response_table(n_nodes: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """<sum of layer response> at normal incidence on a ln E grid, by Gauss-Hermite quadrature."""
    log_energy = np.linspace(np.log(ENERGY_LIMITS_GEV[0] / 2), np.log(ENERGY_LIMITS_GEV[1] * 2), 160)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # probabilists': N(0, 1)
    weights = weights / weights.sum()
    r1, r2 = np.meshgrid(nodes, nodes, indexing="ij")
    w = np.outer(weights, weights)
    energy = np.exp(log_energy)[:, None, None]
    t_max, alpha = _shower_depth_parameters(energy, r1[None], r2[None])
    total = _layer_response(t_max, alpha, np.ones_like(t_max)).sum(axis=-1)
    return log_energy, (total * w).sum(axis=(1, 2))


def _mean_response(energy_gev: np.ndarray) -> np.ndarray:
    log_energy, mean = _mean_response_table()
    return np.interp(np.log(energy_gev), log_energy, mean)


# ------------------------------------------------------------------------------------------------
# lateral profile
# ------------------------------------------------------------------------------------------------
def _radial_parameters(energy_gev: np.ndarray, tau: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GFlash core radius, tail radius (units of R_M) and core weight at relative depth tau."""
    ln_e = np.log(energy_gev)[..., None]
    z = geo.Z_TUNGSTEN
    fs, one_minus_e = geo.SAMPLING_FS, 1.0 - geo.SAMPLING_E_HAT
    r_core = (0.0251 + 0.00319 * ln_e) + (0.1162 - 0.000381 * z) * tau
    r_core += -0.0203 * one_minus_e + 0.0397 / fs * np.exp(-tau)
    k1, k2, k3, k4 = 0.659 - 0.00309 * z, 0.645, -2.59, 0.3585 + 0.0412 * ln_e
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    r_tail += -0.14 * one_minus_e - 0.495 / fs * np.exp(-tau)
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    u = (p2 - tau) / p3
    p_core = p1 * np.exp(u - np.exp(u))
    p_core += one_minus_e * (0.348 - 0.642 / fs * np.exp(-((tau - 1.0) ** 2)))
    return np.maximum(r_core, 1e-3), np.maximum(r_tail, 1e-3), np.clip(p_core, 0.0, 1.0)


def _quadrant_mass(a: np.ndarray, b: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Mass of the density R^2 / (pi (r^2 + R^2)^2) over [0, a] x [0, b] (exact, signed)."""
    sa, sb = np.sqrt(a * a + radius * radius), np.sqrt(b * b + radius * radius)
    return (a / sa * np.arctan(b / sa) + b / sb * np.arctan(a / sb)) / (2.0 * np.pi)


def _cell_fractions(x_edges: np.ndarray, y_edges: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Fraction of one radial component in every cell: (..., X+1) x (..., Y+1) edges -> (..., X, Y)."""
    corners = _quadrant_mass(x_edges[..., :, None], y_edges[..., None, :], radius[..., None, None])
    return np.diff(np.diff(corners, axis=-2), axis=-1)


# ------------------------------------------------------------------------------------------------
# one block of events
# ------------------------------------------------------------------------------------------------
def _simulate_block(n: int, geometry: str, rng: np.random.Generator, energy_range: tuple,
                    theta_range_deg: tuple) -> Showers:
    nx, ny, nz = IMAGE_SHAPES[geometry]
    energy = rng.uniform(*energy_range, size=n)
    if geometry == ANGLE:
        theta = np.radians(rng.uniform(*theta_range_deg, size=n))
    else:
        theta = np.full(n, np.pi / 2.0)
    sin_theta, cot_theta = np.sin(theta), np.cos(theta) / np.sin(theta)

    # 1-3: longitudinal profile, normalised to SF(E), smeared per layer (primary-equivalent GeV).
    t_max, alpha = _shower_depth_parameters(energy, rng.standard_normal(n), rng.standard_normal(n))
    response = _layer_response(t_max, alpha, sin_theta)  # (n, 25)
    layer_gev = energy[:, None] * response / _mean_response(energy)[:, None]
    var = SAMPLING_SIGMA_SQRT_GEV ** 2
    layer_gev = np.where(layer_gev > 0, rng.gamma(np.maximum(layer_gev / var, 1e-300)) * var, 0.0)
    layer_visible = layer_gev * transforms.sampling_fraction_fit(energy)[:, None]

    # 4 + 6: axis position per layer (cell units, window coordinates) and lateral spread.
    depth_mm = geo.SENSOR_DEPTH_MM
    mean_depth = (response * depth_mm).sum(axis=1) / response.sum(axis=1)
    x_axis = nx / 2.0 + rng.uniform(-0.5, 0.5, size=n)
    y_bary = ny / 2.0 + rng.uniform(-0.5, 0.5, size=n)
    y_axis = y_bary[:, None] + (depth_mm - mean_depth[:, None]) * cot_theta[:, None] / geo.CELL_SIZE_MM
    axis_depth_x0 = (geo.LAYER_EDGES_X0[:-1] + geo.LAYER_EDGES_X0[1:]) / 2.0 / sin_theta[:, None]
    r_core, r_tail, p_core = _radial_parameters(energy, axis_depth_x0 / t_max[:, None])
    to_cells = geo.MOLIERE_RADIUS_MM / geo.CELL_SIZE_MM
    x_edges = np.arange(nx + 1.0) - x_axis[:, None, None]  # (n, 1, X+1)
    y_edges = (np.arange(ny + 1.0) - y_axis[:, :, None]) * sin_theta[:, None, None]  # (n, 25, Y+1)
    x_edges = np.broadcast_to(x_edges, (n, nz, nx + 1))
    fractions = (p_core[..., None, None] * _cell_fractions(x_edges, y_edges, r_core * to_cells)
                 + (1 - p_core)[..., None, None] * _cell_fractions(x_edges, y_edges, r_tail * to_cells))
    # The SF fit describes window sums, so the window carries the whole visible budget.
    in_window = (fractions.sum(axis=(2, 3)) * layer_visible).sum(axis=1)
    scale = layer_visible.sum(axis=1) / np.maximum(in_window, 1e-30)
    mean_cell = layer_visible[..., None, None] * fractions * scale[:, None, None, None]

    # 5: cells as compound Poisson-Gamma sums of deposits.
    deposits = rng.poisson(mean_cell / MEAN_DEPOSIT_GEV)
    hit = deposits > 0
    cells = np.zeros(mean_cell.shape, dtype=np.float32)
    cells[hit] = rng.gamma(deposits[hit] * DEPOSIT_SHAPE, MEAN_DEPOSIT_GEV / DEPOSIT_SHAPE)
    ecal = np.ascontiguousarray(cells.transpose(0, 2, 3, 1))  # (n, X, Y, Z)
    return Showers(ecal, energy.astype(np.float32),
                   theta.astype(np.float32) if geometry == ANGLE else None)


def simulate_blocks(n_events: int, geometry: str, seed: int,
                    energy_range: Optional[tuple[float, float]] = None,
                    theta_range_deg: tuple[float, float] = DEFAULT_THETA_RANGE_DEG
                    ) -> Iterator[Showers]:
    """The first `n_events` of the seed's event stream, block by block (bounded memory)."""
    energy_range, theta_range_deg = _check_arguments(n_events, geometry, seed, energy_range,
                                                     theta_range_deg)
    for block, start in enumerate(range(0, n_events, BLOCK_EVENTS)):
        rng = np.random.default_rng([seed, block])
        showers = _simulate_block(BLOCK_EVENTS, geometry, rng, energy_range, theta_range_deg)
        yield showers.subset(slice(0, min(BLOCK_EVENTS, n_events - start)))


def simulate(n_events: int, geometry: str, seed: int,
             energy_range: Optional[tuple[float, float]] = None,
             theta_range_deg: tuple[float, float] = DEFAULT_THETA_RANGE_DEG) -> Showers:
    """`n_events` stand-in showers in GeV; the same seed gives the same events (a prefix-stable stream)."""
    blocks = list(simulate_blocks(n_events, geometry, seed, energy_range, theta_range_deg))
    theta = None if geometry == FIXED else np.concatenate([b.theta_rad for b in blocks])
    return Showers(np.concatenate([b.ecal_gev for b in blocks]),
                   np.concatenate([b.energy_gev for b in blocks]), theta)


# ------------------------------------------------------------------------------------------------
# files in the real layouts
# ------------------------------------------------------------------------------------------------
def file_names(geometry: str, n_files: int) -> list[str]:
    """Real-style names whose sorted (lexicographic) order is the generation order."""
    width = max(3, len(str(n_files - 1)))
    stem = "EleEscan_1" if geometry == FIXED else "EleEscan_RandomAngle_1"
    return [f"{stem}_{j:0{width}d}.h5" for j in range(n_files)]


def _create_datasets(h5, geometry: str, n: int) -> dict:
    """The real layouts: fixed = ECAL GeV + target[:, 1] GeV; angle = ECAL GeV x 50 + labels."""
    shape = IMAGE_SHAPES[geometry]
    chunk_events = max(1, min(n, (1 << 20) // (4 * int(np.prod(shape)))))  # ~1 MB chunks
    compressed = dict(compression="gzip", compression_opts=1, shuffle=True)
    sets = {"ECAL": h5.create_dataset("ECAL", (n, *shape), dtype="float32",
                                      chunks=(chunk_events, *shape), **compressed)}
    if geometry == FIXED:
        sets["target"] = h5.create_dataset("target", (n, 2), dtype="float32", **compressed)
        h5["target"].attrs["columns"] = "pdgID, energy [GeV]"
    else:
        for key in ("energy", "theta", "eta", "sum"):
            sets[key] = h5.create_dataset(key, (n,), dtype="float32", **compressed)
        sets["pdgID"] = h5.create_dataset("pdgID", (n,), dtype="int32", **compressed)
    h5["ECAL"].attrs["units"] = "GeV" if geometry == FIXED else "GeV x 50"
    return sets


def _write_block(sets: dict, geometry: str, start: int, showers: Showers) -> None:
    stop = start + len(showers)
    if geometry == FIXED:
        sets["ECAL"][start:stop] = showers.ecal_gev
        target = np.stack([np.full(len(showers), ELECTRON_PDG_ID, np.float32), showers.energy_gev], 1)
        sets["target"][start:stop] = target
        return
    raw = transforms.angle_raw_from_gev(showers.ecal_gev)
    sets["ECAL"][start:stop] = raw
    sets["energy"][start:stop] = showers.energy_gev
    sets["theta"][start:stop] = showers.theta_rad
    sets["eta"][start:stop] = -np.log(np.tan(showers.theta_rad.astype(np.float64) / 2.0))
    sets["sum"][start:stop] = raw.sum(axis=(1, 2, 3), dtype=np.float64)
    sets["pdgID"][start:stop] = ELECTRON_PDG_ID


def write_dataset(out_dir: str | os.PathLike, n_events: int, geometry: str = FIXED, seed: int = 0,
                  energy_range: Optional[tuple[float, float]] = None,
                  events_per_file: int = EVENTS_PER_FILE, progress: bool = True,
                  theta_range_deg: tuple[float, float] = DEFAULT_THETA_RANGE_DEG) -> list[Path]:
    """Write `n_events` stand-in showers as EleEscan files in the real layout; return their paths.

    Each file is written to a temporary name and renamed when complete. The events are those of
    `simulate(n_events, geometry, seed, ...)`, in file order, whatever `events_per_file` is. A
    marker written last records the recipe (`standin_recipe`), so the set says how it was made.
    """
    import h5py

    if events_per_file < 1:
        raise InputError(f"events per file {events_per_file}: must be at least 1")
    _check_arguments(n_events, geometry, seed, energy_range, theta_range_deg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("*.h5")):
        raise InputError(f"--out {out}: already holds .h5 files; choose an empty directory or "
                         "remove them, so old and new events cannot mix")
    n_files = -(-n_events // events_per_file)
    paths = [out / name for name in file_names(geometry, n_files)]
    meter = None
    if progress:
        from reference_model.progress import Progress
        meter = Progress(n_events, f"synth {geometry}", unit="events")

    blocks = simulate_blocks(n_events, geometry, seed, energy_range, theta_range_deg)
    pending: Optional[Showers] = None
    for index, path in enumerate(paths):
        n_file = min(events_per_file, n_events - index * events_per_file)
        tmp_name = out / f".{path.name}.{os.getpid()}.tmp"
        try:
            with h5py.File(tmp_name, "w") as h5:
                sets = _create_datasets(h5, geometry, n_file)
                written = 0
                while written < n_file:
                    if pending is None:
                        pending = next(blocks)
                    take = min(len(pending), n_file - written)
                    _write_block(sets, geometry, written, pending.subset(slice(0, take)))
                    pending = pending.subset(slice(take, None)) if take < len(pending) else None
                    written += take
                    if meter:
                        meter.update(take)
            os.replace(tmp_name, path)
        except BaseException:
            tmp_name.unlink(missing_ok=True)
            raise
    recipe = standin_recipe(n_events, geometry, seed, events_per_file, energy_range, theta_range_deg)
    (out / COMPLETE_MARKER).write_text(recipe + "\n")
    return paths


COMPLETE_MARKER = ".complete"


def standin_recipe(n_events: int, geometry: str, seed: int, events_per_file: int,
                   energy_range: Optional[tuple[float, float]] = None,
                   theta_range_deg: tuple[float, float] = DEFAULT_THETA_RANGE_DEG) -> str:
    """How a stand-in set was made, as its marker records it: what decides its events and files."""
    recipe = f"events={n_events} geometry={geometry} seed={seed} events_per_file={events_per_file}"
    if energy_range is not None:
        recipe += f" energy_range={energy_range[0]:g},{energy_range[1]:g}"
    if tuple(theta_range_deg) != tuple(DEFAULT_THETA_RANGE_DEG):
        recipe += f" theta_range_deg={theta_range_deg[0]:g},{theta_range_deg[1]:g}"
    return recipe


def recorded_recipe(source) -> Optional[str]:
    """The recipe a complete stand-in directory records; None for any other data (real files,
    a glob, a single file, a set made before recipes were recorded)."""
    try:
        text = (Path(source) / COMPLETE_MARKER).read_text().strip()
    except (OSError, TypeError):
        return None
    return text if text.startswith("events=") else None


def ensure_dataset(directory: str | os.PathLike, n_events: int, geometry: str = FIXED, seed: int = 0,
                   events_per_file: int = EVENTS_PER_FILE, progress: bool = True) -> Path:
    """Make the stand-in set in `directory` unless a complete one of the same recipe is there.

    A marker written last records the recipe (events, geometry, seed), so an interrupted
    generation, or a directory made with another recipe, is made again instead of reused.
    Concurrent callers (jobs on several nodes sharing the directory) wait for one maker
    (`shared_lock.make_once`): none removes or writes files another is writing.
    """
    from reference_model.shared_lock import make_once

    directory = Path(directory)
    recipe = standin_recipe(n_events, geometry, seed, events_per_file) + "\n"
    marker = directory / COMPLETE_MARKER

    def complete() -> bool:
        try:
            return marker.read_text() in (recipe, "ok\n")
        except FileNotFoundError:
            return False

    def make() -> None:
        if progress:
            print(f"[harness] making {n_events} stand-in {geometry}-geometry events (seed {seed}) in "
                  f"{directory}", flush=True)
        write_dataset(directory, n_events, geometry=geometry, seed=seed, events_per_file=events_per_file,
                      progress=progress)  # writes the marker last

    return make_once(directory, complete, make)
