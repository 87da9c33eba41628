"""Air pollution: four surface tracers emitted, advected, removed and mixed in the boundary layer.

CO, NOx, SO2 and particulate matter are emitted over "cities" and farmland (the ``static_*``
fields), advected semi-Lagrangian by the 850 hPa wind and removed with a species lifetime;
concentrations follow a diurnal boundary layer (a factor of about 2 between night and
afternoon over land, as in CAMS, not 10) and photolysis; ``pm1 <= pm2p5 <= pm10``. City
emissions are sized so that surface PM2.5 exceeds the 35 ug/m3 event threshold at a few
percent of the points.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from aurora_mlops.data.synth._atmosphere import Gauss, Weather
from aurora_mlops.data.synth._geography import Geography
from aurora_mlops.data.synth._physics import R_EARTH, RHO0, Array

__all__ = ["Pollution"]


class Pollution:
    """Emission fields and the tracer burdens (kg m-2) of one dataset."""

    LIFETIME_H: ClassVar[dict[str, float]] = {"co": 120.0, "nox": 24.0, "so2": 48.0, "pm": 96.0}
    #: Scale (kg m-2 s-1) of the particulate precursors of a unit city (ammonia, SO2).
    CITY_AMMONIA = 3e-10
    CITY_SO2 = 2e-10

    def __init__(self, geo: Geography, rng: np.random.Generator) -> None:
        self.geo = geo
        self._make_emissions(rng)
        self.burden: dict[str, Array] | None = None

    def _make_emissions(self, rng: np.random.Generator) -> None:
        geo = self.geo
        dlat = 180.0 / (geo.h - 1)
        dlon = 360.0 / geo.w
        width = max(3.0, 0.9 * max(dlat, dlon))
        candidates = np.flatnonzero(geo.land & (np.abs(geo.lat_deg) < 60.0))
        n = min(int(rng.integers(10, 16)), candidates.size)
        picks = rng.choice(candidates, size=n, replace=False) if n else np.array([], dtype=int)
        iy, ix = np.unravel_index(picks, (geo.h, geo.w))
        lat_c = geo.lat_deg[iy, 0] + rng.uniform(-0.3, 0.3, n) * dlat
        lon_c = geo.lon_deg[0, ix] + rng.uniform(-0.3, 0.3, n) * dlon
        kernel = np.exp(-((geo.great_circle_deg(lat_c, lon_c) / width) ** 2))  # (N, H, W)
        size = rng.lognormal(0.0, 0.5, n)[:, None, None]

        def cities(scale: float, spread: float) -> Array:
            weights = size * rng.lognormal(0.0, spread, n)[:, None, None]
            return np.asarray(scale * (weights * kernel).sum(axis=0))

        farmland = geo.lsm * (0.5 + 0.5 * np.cos(2 * geo.lam + rng.uniform(0, 2 * np.pi)) ** 2)
        base = np.full((geo.h, geo.w), 1e-15)
        # Emission fluxes (kg m-2 s-1).
        emis = {
            "ammonia": base + 3e-11 * farmland * np.cos(geo.phi)
            + cities(self.CITY_AMMONIA, 0.3),
            "co": base + 2e-12 * geo.lsm + cities(5e-9, 0.3),
            "nox": base + 2e-13 * geo.lsm + cities(3e-10, 0.3),
            "so2": base + 1e-13 * geo.lsm + cities(self.CITY_SO2, 0.8),
        }
        self.emis = {k: np.broadcast_to(v, (geo.h, geo.w)).copy() for k, v in emis.items()}
        self.anthro = cities(1.0, 0.0) / max(float(cities(1.0, 0.0).max()), 1e-12)

    def static_fields(self) -> dict[str, Array]:
        """The emission fields and their logarithms, by dataset name."""
        out: dict[str, Array] = {}
        for s, e in self.emis.items():
            out[f"static_{s}"] = e
            out[f"static_{s}_log"] = np.log(e)
        return out

    def _advect(self, c: Array, u: Array, v: Array, dt_s: float) -> Array:
        """Semi-Lagrangian advection of ``c`` (H, W) by winds (m s-1) over ``dt_s`` seconds."""
        geo = self.geo
        lat_d = np.clip(geo.lat_deg - np.rad2deg(v * dt_s / R_EARTH), -90.0, 90.0)
        lon_d = geo.lon_deg - np.rad2deg(u * dt_s / (R_EARTH * np.maximum(geo.cos_phi, 0.2)))
        fi = (90.0 - lat_d) / (180.0 / (geo.h - 1))
        fj = np.mod(lon_d, 360.0) / (360.0 / geo.w)
        i0 = np.clip(np.floor(fi).astype(np.int64), 0, geo.h - 2)
        wi = np.clip(fi - i0, 0.0, 1.0)
        j0f = np.floor(fj)
        wj = fj - j0f
        j0 = j0f.astype(np.int64) % geo.w
        j1 = (j0 + 1) % geo.w
        top = c[i0, j0] * (1 - wj) + c[i0, j1] * wj
        bottom = c[i0 + 1, j0] * (1 - wj) + c[i0 + 1, j1] * wj
        return np.asarray(top * (1 - wi) + bottom * wi)

    def _advance(self, u: Array, v: Array, dt_h: float) -> dict[str, Array]:
        """Advect, remove and emit the burdens over ``dt_h`` hours."""
        e = self.emis
        source = {"co": e["co"], "nox": e["nox"], "so2": e["so2"],
                  "pm": e["ammonia"] + 0.3 * e["so2"] + 0.02 * e["co"]}
        if self.burden is None:
            self.burden = {k: s * self.LIFETIME_H[k] * 3600.0 for k, s in source.items()}
        shape = (self.geo.h, self.geo.w)
        u_b, v_b = np.broadcast_to(u, shape), np.broadcast_to(v, shape)
        for k, s in source.items():
            tau = self.LIFETIME_H[k] * 3600.0
            decay = np.exp(-dt_h * 3600.0 / tau)
            self.burden[k] = (self._advect(self.burden[k], u_b, v_b, dt_h * 3600.0) * decay
                              + s * tau * (1 - decay))
        return self.burden

    def step(
        self, out: dict[str, Array], weather: Weather, p: Array, dt_h: float, noise: Gauss,
        wanted: set[str],
    ) -> None:
        """Advance the burdens by ``dt_h`` and write the species fields into ``out``."""
        geo = self.geo
        # Tracers ride the 850 hPa wind.
        gain = 1.0 + 1.2 * float(np.clip(np.log(1000.0 / 850.0) / np.log(4.0), 0.0, 1.0))
        steer = -7.0 * np.cos(np.deg2rad(3.0 * geo.lat_deg)) + 28.0 * np.exp(
            -(((np.abs(geo.lat_deg) - 35.0) / 10.0) ** 2)) * (gain - 1.0) / 1.2
        u, v = steer + gain * weather.u_g, gain * weather.v_g
        burden = self._advance(u, v, dt_h)
        if not wanted:
            return
        hw = (geo.h, geo.w)

        def jitter(shape: tuple[int, ...] = hw) -> Array:
            # 1 + 3 % noise; a float32 normal never reaches -33 sigma, so this stays positive.
            return np.maximum(1.0 + 0.03 * noise(shape), 0.5)

        lsm, daylight, phi_a = geo.lsm, weather.daylight, weather.phi_a
        # Boundary layer (m): deeper in the afternoon over land, shallower at night.
        bl = 900.0 + 300.0 * lsm * np.cos(2 * np.pi * (weather.lst - 14.0) / 24.0) + 200.0 * (
            1 - lsm)
        nh = 0.5 + 0.5 * geo.sin_phi
        wind = np.hypot(u, v)
        # Surface particulate matter (kg m-3).
        sea_salt = (1 - lsm) * 6e-9 * (1.0 + (wind / 8.0) ** 2)
        dust = lsm * 8e-9 * (0.5 + geo.subtropics)
        pm10 = 3e-9 + sea_salt + dust + burden["pm"] / bl * 0.5
        anthro_frac = np.clip(burden["pm"] / bl * 0.5 / pm10, 0.0, 1.0)
        f25 = 0.5 + 0.3 * anthro_frac
        f1 = 0.6 + 0.25 * anthro_frac
        pm10 = pm10 * jitter()
        out["pm10"] = pm10
        out["pm2p5"] = pm10 * f25
        out["pm1"] = pm10 * f25 * f1
        # Total columns (kg m-2).
        photo = 0.6 + 0.4 * daylight
        out["tcco"] = (7e-4 + 4e-4 * nh + burden["co"]) * jitter()
        out["tcno2"] = (8e-7 + 0.8 * burden["nox"] * (1.2 - 0.4 * daylight)) * jitter()
        out["tc_no"] = (1.5e-7 + 0.15 * burden["nox"] * photo) * jitter()
        out["tcso2"] = (4e-7 + burden["so2"]) * jitter()
        out["gtco3"] = np.clip(
            6.2e-3 + 2.0e-3 * geo.sin_phi**2 - 2.5e-7 * phi_a, 3e-3, 1.2e-2) * jitter()
        # Mixing ratios (kg kg-1) on pressure levels: surface air mixed upward by the boundary
        # layer, a free-troposphere background, and a stratospheric ozone layer.
        mix = np.exp(-(1000.0 - p) / 120.0)  # (L, 1, 1)
        to_ratio = 1.0 / (bl * RHO0)  # burden (kg m-2) -> surface mixing ratio (kg kg-1)
        lhw = (p.shape[0], geo.h, geo.w)
        out["co"] = (8e-8 + 4e-8 * nh + mix * burden["co"] * to_ratio * 0.5) * jitter(lhw)
        out["no2"] = (5e-11 + mix * 0.8 * burden["nox"] * to_ratio * (1.2 - 0.4 * daylight)
                      ) * jitter(lhw)
        out["no"] = (1e-11 + mix * 0.15 * burden["nox"] * to_ratio * photo) * jitter(lhw)
        out["so2"] = (3e-11 + mix * burden["so2"] * to_ratio) * jitter(lhw)
        strat = 1.2e-5 * np.exp(-(np.log(p / 15.0) ** 2) / 1.2) * (1.0 - 5e-5 * phi_a)
        surf_o3 = mix * 2.5e-8 * daylight * (1.0 + self.anthro)
        out["go3"] = (4e-8 + np.clip(strat, 0.0, None) + surf_o3) * jitter(lhw)
