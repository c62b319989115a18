"""The CLIC electromagnetic calorimeter the 3DGAN data come from, as numbers with their sources.

The stand-in simulator builds its showers on this geometry, so every constant a reader might
question is named here once, with where it comes from (tags as in 3dgan-reference.md: TW the
CLIC ECAL twiki, CC the CaloChallenge, G4 the GFlash sources, PDG standard material values).
Values marked "derived" are computed below from sourced ones; the one assumption is marked.
"""
from __future__ import annotations

import numpy as np

# -- layers (TW): a W/Si sampling calorimeter, 17 thin then 8 thick tungsten plates ----------
N_LAYERS = 25
N_THIN_LAYERS = 17
THIN_ABSORBER_MM = 2.4  # TW
THICK_ABSORBER_MM = 4.8  # TW; LCD: "last layers are twice as thick"
INNER_RADIUS_MM = 1500.0  # TW, barrel
OUTER_RADIUS_MM = 1659.0  # TW, barrel
CELL_SIZE_MM = 5.1  # TW, 5.1 x 5.1 mm silicon pads
SILICON_MM = 0.5  # ASSUMPTION: not in the sources read; a typical Si-W sensor thickness

# -- materials (CC, PDG, G4) -----------------------------------------------------------------
X0_TUNGSTEN_MM = 3.504  # CC
X0_TUNGSTEN_G_CM2 = 6.76  # PDG
DENSITY_TUNGSTEN_G_CM3 = 19.3  # PDG
Z_TUNGSTEN = 74.0
A_TUNGSTEN = 183.84
X0_SILICON_G_CM2 = 21.82  # PDG
DENSITY_SILICON_G_CM3 = 2.329  # PDG
Z_SILICON = 14.0
ES_MEV = 21.0  # G4: scale energy in R_M = X0 * Es / Ec

# -- derived -----------------------------------------------------------------------------------
ABSORBER_MM = np.array([THIN_ABSORBER_MM] * N_THIN_LAYERS
                       + [THICK_ABSORBER_MM] * (N_LAYERS - N_THIN_LAYERS))
LAYER_X0 = ABSORBER_MM / X0_TUNGSTEN_MM  # 0.685 and 1.370 X0 per layer
LAYER_EDGES_X0 = np.concatenate([[0.0], np.cumsum(LAYER_X0)])  # 22.6 X0 in total
# Everything in a layer that is not tungsten (silicon, readout, gaps), from the barrel depth.
NON_ABSORBER_MM = (OUTER_RADIUS_MM - INNER_RADIUS_MM - ABSORBER_MM.sum()) / N_LAYERS  # 3.19 mm
LAYER_PITCH_MM = ABSORBER_MM + NON_ABSORBER_MM
# Each layer's silicon sits behind its tungsten plate: depth of the sensitive plane, in mm.
SENSOR_DEPTH_MM = np.cumsum(LAYER_PITCH_MM) - NON_ABSORBER_MM / 2.0

# GFlash material formulas (G4 SetMaterial): Ec = 2.66 (X0 Z/A)^1.1 MeV, R_M = X0 Es / Ec.
CRITICAL_ENERGY_MEV = 2.66 * (X0_TUNGSTEN_G_CM2 * Z_TUNGSTEN / A_TUNGSTEN) ** 1.1  # 8.0 MeV
MOLIERE_RADIUS_MM = X0_TUNGSTEN_MM * ES_MEV / CRITICAL_ENERGY_MEV  # 9.2 mm, 1.8 cells


def _sampling_structure() -> tuple[float, float]:
    """GFlash's sampling-calorimeter terms for a thin W/Si layer: (Fs, e_hat).

    Fs = X0_eff / (d_abs + d_act) with the mass-weighted X0_eff of the W/Si pair; e_hat =
    1 / (1 + 0.007 (Z_abs - Z_act)) (G4 GFlashSamplingShowerParameterisation).
    """
    mass_w = THIN_ABSORBER_MM * DENSITY_TUNGSTEN_G_CM3
    mass_si = SILICON_MM * DENSITY_SILICON_G_CM3
    weight_w, weight_si = mass_w / (mass_w + mass_si), mass_si / (mass_w + mass_si)
    x0_eff_g_cm2 = 1.0 / (weight_w / X0_TUNGSTEN_G_CM2 + weight_si / X0_SILICON_G_CM2)
    density_eff = (mass_w + mass_si) / (THIN_ABSORBER_MM + SILICON_MM)
    x0_eff_mm = 10.0 * x0_eff_g_cm2 / density_eff
    fs = x0_eff_mm / (THIN_ABSORBER_MM + SILICON_MM)
    e_hat = 1.0 / (1.0 + 0.007 * (Z_TUNGSTEN - Z_SILICON))
    return fs, e_hat


SAMPLING_FS, SAMPLING_E_HAT = _sampling_structure()
