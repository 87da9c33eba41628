"""The toy atmosphere: a zonal-mean climate with travelling synoptic waves.

A zonal-mean climate (warm equator, trade winds and westerlies with a jet aloft, a mean
sea-level pressure in geostrophic balance with the surface wind, a season from the solar
declination) carries travelling waves: a few zonal wavenumbers per latitude band, advected
eastward (westward in the tropics) at a speed set by the band's steering wind, with slow life
cycles. Their geopotential anomaly grows with height; winds are geostrophic to it, temperature
anomalies follow hydrostatically and ``msl`` anomalies are ``rho * phi'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aurora_mlops.data.synth._geography import Geography
from aurora_mlops.data.synth._physics import (
    EPOCH,
    GAMMA,
    OMEGA,
    R_EARTH,
    RD,
    RHO0,
    T_GAIN_SURFACE,
    Array,
    column,
    q_sat,
)

__all__ = ["BANDS", "Atmosphere", "Gauss", "Weather"]

#: Draws standard normal noise of a shape (float32).
Gauss = Callable[[tuple[int, ...]], Array]

#: Storm-track bands: centre (degrees north), e-folding half-width (degrees) and geopotential
#: amplitude at 1000 hPa (m2 s-2). The mid-latitude amplitudes give ERA5-like day-to-day
#: variability: a temporal standard deviation of z500 near 1000 m2 s-2 and of msl near
#: 1000 Pa in the storm tracks, and 10 m winds above 15 m/s at a few percent of the points.
BANDS: tuple[tuple[float, float, float], ...] = (
    (45.0, 14.0, 4400.0), (-50.0, 14.0, 5200.0), (12.0, 8.0, 60.0),
)


@dataclass(frozen=True)
class _Band:
    """Travelling waves of one latitude band: ``sum_k a_k(t) cos(k (lon - w_k t) + m_k lat + p_k)``.

    Attributes:
        center: Band centre (degrees north).
        width: e-folding half-width (degrees).
        amp: Geopotential amplitude at 1000 hPa (m2 s-2).
        k: Zonal wavenumbers, shape (K,).
        a: Relative amplitudes, shape (K,).
        omega: Angular phase speeds (rad h-1), shape (K,).
        tilt: Phase change per radian of latitude, shape (K,).
        phase: Initial phases (rad), shape (K,).
        life: Life-cycle periods (h), shape (K,).
        life_phase: Life-cycle phases (rad), shape (K,).
    """

    center: float
    width: float
    amp: float
    k: Array
    a: Array
    omega: Array
    tilt: Array
    phase: Array
    life: Array
    life_phase: Array


@dataclass(frozen=True)
class Weather:
    """What one time step of the atmosphere leaves to the tracers and the sea.

    Attributes:
        fields: Dataset name -> array of the weather variables.
        phi_a: Geopotential anomaly at 1000 hPa (m2 s-2), (H, W).
        u_g: Geostrophic zonal wind of the anomaly (m s-1), (H, W).
        v_g: Geostrophic meridional wind of the anomaly (m s-1), (H, W).
        u10: 10 m zonal wind (m s-1), (H, W).
        v10: 10 m meridional wind (m s-1), (H, W).
        daylight: Cosine of the solar zenith angle, clipped at 0, (H, W).
        lst: Local solar time (h), (1, W).
    """

    fields: dict[str, Array]
    phi_a: Array
    u_g: Array
    v_g: Array
    u10: Array
    v10: Array
    daylight: Array
    lst: Array


class Atmosphere:
    """Climate, waves and the weather fields at any time; level arrays are (L, 1, 1) in hPa."""

    def __init__(self, geo: Geography, levels: tuple[int, ...], rng: np.random.Generator) -> None:
        self.geo = geo
        self.p = np.asarray(levels, dtype=np.float64)[:, None, None]
        self._level_shape()
        self._make_climate()
        self.bands = self._make_bands(rng)

    def _level_shape(self) -> None:
        """Vertical structure ``s(p)``: 0 at 1000 hPa, 1 at 250 hPa, 0.5 at 50 hPa."""
        p = self.p
        lo = np.clip(np.log(1000.0 / p) / np.log(4.0), 0.0, None)
        hi = 1.0 - 0.5 * np.log(250.0 / p) / np.log(5.0)
        self.s_p = np.where(p >= 250.0, lo, hi)
        # d s / d ln p, for the hydrostatic temperature anomaly.
        ds_dlnp = np.where(p >= 250.0, np.where(p <= 1000.0, -1.0 / np.log(4.0), 0.0),
                           0.5 / np.log(5.0))
        self.wave_gain = 1.0 + 1.2 * self.s_p  # phi'(p) = gain * phi'(1000)
        self.t_gain = -1.2 * ds_dlnp / RD  # T'(p) = t_gain * phi'(1000)  (K per m2 s-2)

    @staticmethod
    def u_surface(lat_deg: Array) -> Array:
        """Zonal-mean surface wind (m s-1): trades, westerlies, polar easterlies."""
        return -7.0 * np.cos(np.deg2rad(3.0 * lat_deg))

    def u_mean(self, lat_deg: Array, s_p: Array) -> Array:
        """Zonal-mean wind (m s-1) at vertical-structure value ``s_p``."""
        jet = 28.0 * np.exp(-(((np.abs(lat_deg) - 35.0) / 10.0) ** 2))
        return self.u_surface(lat_deg) + jet * s_p

    def _make_climate(self) -> None:
        geo = self.geo
        # Mean sea-level pressure in geostrophic balance with the surface wind:
        # d p / d phi = -f rho R u.
        fine = np.linspace(-90.0, 90.0, 3601)
        f = 2 * OMEGA * np.sin(np.deg2rad(fine))
        dpdphi = -f * RHO0 * R_EARTH * self.u_surface(fine)
        p = np.concatenate([[0.0], np.cumsum(0.5 * (dpdphi[1:] + dpdphi[:-1]) * np.deg2rad(0.05))])
        p -= np.average(p, weights=np.cos(np.deg2rad(fine)))
        self.msl_mean = 101_325.0 + np.interp(geo.lat_deg, fine, p)
        self.p_tropopause = 100.0 + 200.0 * geo.sin_phi**2  # (hPa)
        self.u_bar = self.u_mean(geo.lat_deg, self.s_p)  # (L, H, 1)
        f_abs = 2 * OMEGA * np.maximum(np.abs(geo.sin_phi), np.sin(np.deg2rad(12.0)))
        self.f = np.where(geo.lat_deg >= 0.0, f_abs, -f_abs)
        self.cos_safe = np.maximum(geo.cos_phi, 0.05)

    def _make_bands(self, rng: np.random.Generator) -> list[_Band]:
        bands = []
        for center, width, amp in BANDS:
            center += rng.uniform(-4.0, 4.0)
            kk = np.sort(rng.choice(np.arange(3, 9), size=3, replace=False)).astype(float)
            a = rng.uniform(0.5, 1.0, 3)
            a /= a.sum()
            steer = float(self.u_mean(np.asarray(center), np.asarray(0.35)))
            rad_per_h = steer / (R_EARTH * np.cos(np.deg2rad(center))) * 3600.0
            bands.append(_Band(
                center=center, width=width, amp=amp * rng.uniform(0.85, 1.15), k=kk, a=a,
                omega=rad_per_h * rng.uniform(0.75, 1.0, 3), tilt=rng.uniform(-1.5, 1.5, 3),
                phase=rng.uniform(0, 2 * np.pi, 3), life=rng.uniform(96.0, 240.0, 3),
                life_phase=rng.uniform(0, 2 * np.pi, 3),
            ))
        return bands

    def waves(self, t_h: float) -> tuple[Array, Array, Array]:
        """Geopotential anomaly at 1000 hPa (m2 s-2) and its geostrophic wind (m s-1), (H, W)."""
        geo = self.geo
        phi_a = np.zeros((geo.h, geo.w))
        dlam = np.zeros((geo.h, geo.w))
        dphi = np.zeros((geo.h, geo.w))
        for b in self.bands:
            g = -(((geo.lat_deg - b.center) / b.width) ** 2)
            e = b.amp * np.exp(g)
            env = e * geo.cos_phi**2
            # d/dphi of exp(g) cos^2(phi), written without tan so it stays finite at the poles.
            denv = e * (-2.0 * (geo.lat_deg - b.center) / b.width**2 * np.rad2deg(1.0)
                        * geo.cos_phi**2 - 2.0 * geo.cos_phi * geo.sin_phi)
            for j in range(b.k.size):
                amp = b.a[j] * (1.0 + 0.35 * np.sin(2 * np.pi * t_h / b.life[j] + b.life_phase[j]))
                # cos/sin of (lon part + lat part), separably: trig on (1, W) and (H, 1) only.
                along = b.k[j] * (geo.lam - b.omega[j] * t_h) + b.phase[j]
                across = b.tilt[j] * geo.phi
                ca, sa, cb, sb = np.cos(along), np.sin(along), np.cos(across), np.sin(across)
                c = ca * cb - sa * sb
                s = sa * cb + ca * sb
                phi_a += amp * env * c
                dlam -= amp * env * b.k[j] * s
                dphi += amp * (denv * c - env * b.tilt[j] * s)
        u_g = -dphi / (self.f * R_EARTH)
        v_g = dlam / (self.f * R_EARTH * self.cos_safe)
        return phi_a, u_g, v_g

    def step(self, t_h: float, noise: Gauss, wanted: set[str]) -> Weather:
        """The weather ``t_h`` hours after the epoch; ``noise(shape)`` draws the noise."""
        geo = self.geo
        when = EPOCH + np.timedelta64(round(t_h * 3600), "s")
        doy = (when - when.astype("datetime64[Y]")) / np.timedelta64(1, "D")
        hour_utc = (t_h % 24.0 + 24.0) % 24.0
        decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 81.0) / 365.25)
        season = np.sin(decl) / np.sin(np.deg2rad(23.44))  # +1 at the northern summer solstice
        lst = hour_utc + geo.lon_deg / 15.0  # local solar time (h), (1, W)
        hour_angle = 2 * np.pi * (lst - 12.0) / 24.0
        cos_sza = geo.sin_phi * np.sin(decl) + geo.cos_phi * np.cos(decl) * np.cos(hour_angle)
        daylight = np.clip(cos_sza, 0.0, 1.0)  # (H, W)

        phi_a, u_g, v_g = self.waves(t_h)

        # Column temperature at sea level (K): warm equator, summer hemisphere warmer.
        t_col = 301.0 - 48.0 * geo.sin_phi**2 + 9.0 * season * geo.sin_phi * np.abs(geo.sin_phi)
        msl = self.msl_mean + RHO0 * phi_a
        temp, z = column(self.p, t_col, msl / 100.0, self.p_tropopause)
        temp = temp + self.t_gain * phi_a
        z = z + (self.wave_gain - 1.0) * phi_a
        u = self.u_bar + self.wave_gain * u_g
        v = self.wave_gain * v_g

        # Diurnal cycle in local solar time, peaking mid-afternoon, strongest over land.
        diurnal_amp = (1.5 + 6.5 * geo.lsm) * np.clip(np.cos(geo.phi - decl), 0.1, 1.0)
        diurnal = diurnal_amp * np.cos(2 * np.pi * (lst - 15.0) / 24.0)
        temp = temp + 0.3 * diurnal * (self.p >= 925.0)
        t2m = (t_col + T_GAIN_SURFACE * phi_a + diurnal
               + 6.0 * season * geo.sin_phi * geo.lsm - GAMMA * geo.orography)

        # 10 m wind: the 1000 hPa wind slowed and turned toward low pressure.
        u_sfc = self.u_surface(geo.lat_deg) + u_g
        factor = 0.8 - 0.25 * geo.lsm
        turn = np.deg2rad(20.0 + 15.0 * geo.lsm) * np.where(geo.lat_deg >= 0.0, 1.0, -1.0)
        u10 = factor * (u_sfc * np.cos(turn) - v_g * np.sin(turn))
        v10 = factor * (u_sfc * np.sin(turn) + v_g * np.cos(turn))

        out: dict[str, Array] = {}
        hw = (geo.h, geo.w)
        if "q" in wanted:
            rh0 = 0.82 - 0.3 * geo.subtropics - 0.12 * geo.lsm
            rh = rh0 * (self.p / 1000.0) ** 0.9 + 0.08 * np.tanh(v * np.sign(geo.lat_deg) / 10.0)
            # The stratosphere is drier still, so that q keeps decreasing with height there.
            rh = np.clip(rh, 0.02, 0.97) * np.minimum(self.p / self.p_tropopause, 1.0) ** 1.5
            out["q"] = np.minimum(rh * q_sat(temp, self.p), 0.04) * np.exp(
                0.02 * noise(temp.shape))
        if wanted:
            draws = {"2t": (t2m, 0.25), "msl": (msl, 25.0), "10u": (u10, 0.3),
                     "10v": (v10, 0.3), "t": (temp, 0.15), "z": (z, 8.0), "u": (u, 0.3),
                     "v": (v, 0.3)}
            for name, (value, sigma) in draws.items():
                shape = hw if np.ndim(value) == 2 else value.shape
                out[name] = value + sigma * noise(shape)
        return Weather(fields=out, phi_a=phi_a, u_g=u_g, v_g=v_g, u10=u10, v10=v10,
                       daylight=daylight, lst=lst)
