"""Physical constants and column, humidity and direction formulas of the synthetic generator."""

from __future__ import annotations

import numpy as np

__all__ = [
    "EPOCH",
    "GAMMA",
    "OMEGA",
    "RD",
    "RHO0",
    "R_EARTH",
    "T_GAIN_SURFACE",
    "Array",
    "G",
    "column",
    "from_direction",
    "mean_direction",
    "q_sat",
]

Array = np.ndarray

# Physical constants (SI).
G = 9.80665  # gravity (m s-2)
RD = 287.05  # gas constant of dry air (J kg-1 K-1)
R_EARTH = 6.371e6  # (m)
OMEGA = 7.292e-5  # Earth's rotation (rad s-1)
GAMMA = 0.0065  # tropospheric lapse rate (K m-1)
KAPPA = RD * GAMMA / G  # exponent of T(p) under a constant lapse rate
RHO0 = 1.2  # surface air density (kg m-3)
#: Hydrostatic temperature anomaly (K) near the surface per m2 s-2 of geopotential anomaly.
T_GAIN_SURFACE = 1.2 / (np.log(4.0) * RD)

#: Hours of the fixed epoch that all phases count from (so ``start`` only shifts the window).
EPOCH = np.datetime64("2024-01-01T00:00", "ns")


def column(p: Array, t_s: Array, p_s: Array, p_tr: Array) -> tuple[Array, Array]:
    """Temperature (K) and geopotential (m2 s-2) of a constant-lapse-rate troposphere.

    Args:
        p: Pressure levels (hPa), shape (L, 1, 1).
        t_s: Temperature at pressure ``p_s`` (K), broadcastable to (H, W).
        p_s: Sea-level pressure (hPa), (H, W); geopotential is 0 there.
        p_tr: Tropopause pressure (hPa), broadcastable to (H, W); above it temperature rises
            slowly (2 K per e-fold of pressure).
    """
    x = (p / p_s) ** KAPPA
    t_lo = t_s * x
    z_lo = t_s * G / GAMMA * (1.0 - x)
    x_tr = (p_tr / p_s) ** KAPPA
    t_tr = t_s * x_tr
    z_tr = t_s * G / GAMMA * (1.0 - x_tr)
    y = np.clip(np.log(p_tr / p), 0.0, None)
    t_hi = t_tr + 2.0 * y
    z_hi = z_tr + RD * (t_tr * y + y**2)
    above = p < p_tr
    return np.where(above, t_hi, t_lo), np.where(above, z_hi, z_lo)


def q_sat(t: Array, p: Array) -> Array:
    """Saturation specific humidity (kg kg-1) at temperature ``t`` (K) and pressure ``p`` (hPa)."""
    e_s = 611.2 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    p_pa = p * 100.0
    return np.asarray(0.622 * e_s / np.maximum(p_pa - 0.378 * e_s, 0.5 * p_pa))


def from_direction(u: Array, v: Array) -> Array:
    """Meteorological direction (degrees clockwise from north) the flow ``(u, v)`` comes from."""
    return np.asarray(np.mod(np.rad2deg(np.arctan2(-u, -v)), 360.0))


def mean_direction(*parts: tuple[Array, Array]) -> Array:
    """Energy-weighted circular mean (degrees in [0, 360)) of ``(energy, direction)`` pairs."""
    s = sum(e * np.sin(np.deg2rad(d)) for e, d in parts)
    c = sum(e * np.cos(np.deg2rad(d)) for e, d in parts)
    return np.asarray(np.mod(np.rad2deg(np.arctan2(s, c)), 360.0))
