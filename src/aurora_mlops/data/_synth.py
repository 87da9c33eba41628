"""A synthetic data source with learnable dynamics, for every variant.

:func:`synthesize` returns an in-memory canonical dataset (see :mod:`aurora_mlops.data._layout`)
whose fields behave like a toy atmosphere, so that fine-tuning on it means something:

* **Weather.** A zonal-mean climate (warm equator, trade winds and westerlies with a jet aloft,
  a mean sea-level pressure in geostrophic balance with the surface wind, a season from the solar
  declination) carries travelling synoptic waves: a few zonal wavenumbers per latitude band,
  advected eastward (westward in the tropics) at a speed set by the band's steering wind, with
  slow life cycles. Their geopotential anomaly grows with height; winds are geostrophic to it,
  temperature anomalies follow hydrostatically and ``msl`` anomalies are ``rho * phi'``.
  Columns use a constant lapse rate up to a latitude-dependent tropopause (isothermal-ish
  above), ``z`` follows the hypsometric relation, ``q`` is a relative humidity times saturation.
  ``2t`` has a diurnal cycle in local solar time, strongest over land, and a lapse-rate
  correction for orography. 10 m winds are the 1000 hPa wind slowed and turned toward low
  pressure (more over land).
* **Air pollution.** Four surface tracers (CO, NOx, SO2, particulate matter) are emitted over
  "cities" and farmland (the ``static_*`` fields), advected semi-Lagrangian by the 850 hPa wind
  and removed with a species lifetime; concentrations follow a diurnal boundary layer and
  photolysis; ``pm1 <= pm2p5 <= pm10``.
* **Ocean waves.** A wind sea relaxes toward the fully developed height of the local 10 m wind,
  two swell partitions come from the storm belts; directions are "coming from", clockwise from
  north, matching ``10u_wave``/``10v_wave``; heights and periods are zero on land and ice, and
  strictly positive together on open water.

Everything is vectorised over the grid and generated one time step at a time into preallocated
``float32`` arrays, so memory stays close to the size of the result. The same seed gives the
same dataset.
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops._version import __version__
from aurora_mlops.data._layout import ATMOS_DIMS, LAYOUT_TAG, STATIC_DIMS, SURF_DIMS
from aurora_mlops.errors import ConfigError
from aurora_mlops.variables import VariableSpec
from aurora_mlops.variants import VariantSpec, get_variant

__all__ = ["synthesize"]

log = logging.getLogger(__name__)

Array = np.ndarray

# Physical constants (SI).
_G = 9.80665  # gravity (m s-2)
_RD = 287.05  # gas constant of dry air (J kg-1 K-1)
_R_EARTH = 6.371e6  # (m)
_OMEGA = 7.292e-5  # Earth's rotation (rad s-1)
_GAMMA = 0.0065  # tropospheric lapse rate (K m-1)
_KAPPA = _RD * _GAMMA / _G  # exponent of T(p) under a constant lapse rate
_RHO0 = 1.2  # surface air density (kg m-3)
#: Hydrostatic temperature anomaly (K) near the surface per m2 s-2 of geopotential anomaly.
_T_GAIN_SURFACE = 1.2 / (np.log(4.0) * _RD)

#: Hours of the fixed epoch that all phases count from (so ``start`` only shifts the window).
_EPOCH = np.datetime64("2024-01-01T00:00", "ns")
#: Steps simulated before the first time, so tracers and waves start near their own climate.
_SPIN_UP_STEPS = 8
_DEFAULT_DAYS = 28


def synthesize(
    variant: str | VariantSpec,
    *,
    times: int | None = None,
    grid: tuple[int, int] | None = None,
    seed: int = 0,
    profile: Literal["smoke", "production"] = "smoke",
    start: str = "2024-01-01T00:00",
) -> xr.Dataset:
    """Generate a canonical dataset with learnable dynamics for ``variant``.

    Args:
        variant: The variant, or its registry name; decides which variables are generated.
        times: Number of time steps (default: four weeks of the variant's timestep, 112 at
            6 h and 56 at 12 h).
        grid: ``(H, W)`` points of the global regular grid (default: the variant's smoke grid).
            Latitudes run from 90 to -90 inclusive, longitudes from 0 in steps of ``360 / W``.
        seed: Random seed of continents, cities, wave phases and noise.
        profile: ``smoke`` or ``production``: which pressure levels to generate.
        start: First time (ISO 8601, UTC).

    Returns:
        The dataset: surface variables ``(time, lat, lon)``, atmospheric ones
        ``(time, level, lat, lon)``, static ones ``(lat, lon)``, all ``float32`` with ``units``
        and ``long_name``; attributes ``layout``, ``variant``, ``seed``, ``generator``.

    Raises:
        ConfigError: Unknown variant, fewer than one time, a grid smaller than 2x2, or a
            ``start`` that is not a date.
    """
    spec = get_variant(variant) if isinstance(variant, str) else variant
    step_h = spec.timestep_hours
    n_times = times if times is not None else _DEFAULT_DAYS * 24 // step_h
    h, w = grid if grid is not None else spec.smoke_grid
    if n_times < 1:
        raise ConfigError(f"synthesize: times must be at least 1, got {n_times}")
    if h < 2 or w < 2:
        raise ConfigError(f"synthesize: grid must be at least 2x2 points, got {h}x{w}")
    if profile not in ("smoke", "production"):
        raise ConfigError(f"synthesize: profile must be 'smoke' or 'production', got {profile!r}")
    try:
        t0 = pd.Timestamp(start)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"synthesize: start {start!r} is not an ISO 8601 time: {e}") from e
    if t0.tzinfo is not None:
        t0 = t0.tz_convert("UTC").tz_localize(None)
    levels = tuple(int(p) for p in spec.pressure_levels(profile))

    tic = _time.perf_counter()
    time = pd.date_range(t0, periods=n_times, freq=f"{step_h}h").values.astype("datetime64[ns]")
    lat = np.linspace(90.0, -90.0, h)
    lon = np.linspace(0.0, 360.0, w, endpoint=False)
    world = _World(spec, lat, lon, levels, seed)

    variables = spec.variables()
    out: dict[str, Array] = {}
    for v in variables:
        if v.kind == "surf":
            out[v.store_name] = np.empty((n_times, h, w), dtype=np.float32)
        elif v.kind == "atmos":
            out[v.store_name] = np.empty((n_times, len(levels), h, w), dtype=np.float32)
    wanted = {v.store_name for v in variables if v.kind != "static"}

    hours = (time - _EPOCH) / np.timedelta64(1, "h")
    for k in range(_SPIN_UP_STEPS, 0, -1):
        world.step(float(hours[0]) - k * step_h, step_h, wanted=set())
    for i, t_h in enumerate(hours):
        fields = world.step(float(t_h), step_h, wanted=wanted)
        for name in wanted:
            out[name][i] = fields[name]

    static = world.static_fields()
    data_vars: dict[str, xr.Variable] = {}
    for v in variables:
        attrs = {"units": v.units, "long_name": v.long_name}
        if v.kind == "static":
            arr = static[v.store_name].astype(np.float32)
            data_vars[v.store_name] = xr.Variable(STATIC_DIMS, arr, attrs)
        else:
            dims = SURF_DIMS if v.kind == "surf" else ATMOS_DIMS
            data_vars[v.store_name] = xr.Variable(dims, _finish(v, out.pop(v.store_name)), attrs)
    coords: dict[str, xr.Variable] = {
        "time": xr.Variable("time", time),
        "lat": xr.Variable("lat", lat, {"units": "degrees_north", "long_name": "latitude"}),
        "lon": xr.Variable("lon", lon, {"units": "degrees_east", "long_name": "longitude"}),
    }
    if spec.atmos_vars:
        coords["level"] = xr.Variable(
            "level", np.asarray(levels, dtype=np.int64),
            {"units": "hPa", "long_name": "pressure level"},
        )
    ds = xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "layout": LAYOUT_TAG,
            "variant": spec.name,
            "seed": int(seed),
            "profile": profile,
            "timestep_hours": int(step_h),
            "generator": f"aurora_mlops.data.synthesize (aurora-mlops {__version__})",
        },
    )
    log.info(
        "synthesised %s: %d times x %d levels x %dx%d grid, seed %d, in %.2f s",
        spec.name, n_times, len(levels), h, w, seed, _time.perf_counter() - tic,
    )
    return ds


def _finish(v: VariableSpec, arr: Array) -> Array:
    """Keep float32 rounding from pushing a value out of the variable's range (in place)."""
    if v.angle:
        arr[arr >= 360.0] -= 360.0
    np.clip(arr, v.valid_min, v.valid_max, out=arr)
    return arr


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


class _World:
    """Static geography, wave parameters and the tracer and sea states of one dataset.

    Grid arrays are ``(H, W)`` (or broadcastable ``(H, 1)``/``(1, W)``), level arrays
    ``(L, 1, 1)`` in hPa; all arithmetic is float64 and vectorised.
    """

    def __init__(
        self, spec: VariantSpec, lat: Array, lon: Array, levels: tuple[int, ...], seed: int
    ) -> None:
        self.spec = spec
        self.h, self.w = lat.size, lon.size
        self.lat_deg = lat[:, None]
        self.lon_deg = lon[None, :]
        self.phi = np.deg2rad(self.lat_deg)
        self.lam = np.deg2rad(self.lon_deg)
        self.sin_phi, self.cos_phi = np.sin(self.phi), np.cos(self.phi)
        self.p = np.asarray(levels, dtype=np.float64)[:, None, None]
        self.surf_vars = set(spec.surf_vars)
        self.has_pollution = "pm10" in self.surf_vars
        self.has_waves = "swh" in self.surf_vars

        root = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x5EED])
        geo_ss, wave_ss, city_ss, noise_ss = root.spawn(4)
        self.noise = np.random.default_rng(noise_ss)
        self._make_geography(np.random.default_rng(geo_ss))
        self._make_climate()
        self.bands = self._make_bands(np.random.default_rng(wave_ss))
        if self.has_pollution:
            self._make_emissions(np.random.default_rng(city_ss))
        self.tracers: dict[str, Array] | None = None
        self.sea: dict[str, Array] | None = None

    # -- static fields -----------------------------------------------------------------------

    def _great_circle_deg(self, lat_c: Array, lon_c: Array) -> Array:
        """Angular distances (degrees) from centres ``(N,)`` to every point, shape (N, H, W)."""
        lat_c = np.deg2rad(lat_c)[:, None, None]
        lon_c = np.deg2rad(lon_c)[:, None, None]
        cosd = np.sin(self.phi) * np.sin(lat_c) + np.cos(self.phi) * np.cos(lat_c) * np.cos(
            self.lam - lon_c
        )
        return np.rad2deg(np.arccos(np.clip(cosd, -1.0, 1.0)))

    def _make_geography(self, rng: np.random.Generator) -> None:
        n = int(rng.integers(6, 9))
        lat_c = rng.uniform(-50.0, 65.0, n)
        lon_c = rng.uniform(0.0, 360.0, n)
        radius = rng.uniform(16.0, 34.0, n)
        d = self._great_circle_deg(lat_c, lon_c)
        blobs = np.exp(-((d / radius[:, None, None]) ** 2))
        ripple = 0.12 * np.cos(3 * self.lam + rng.uniform(0, 2 * np.pi)) * np.cos(
            2 * self.phi + rng.uniform(0, 2 * np.pi)
        )
        antarctica = 1.5 / (1.0 + np.exp((self.lat_deg + 70.0) / 2.5))
        s = blobs.sum(axis=0) + ripple + antarctica
        self.lsm = np.clip((s - 0.5) / 0.15 + 0.5, 0.0, 1.0)
        land = self.lsm >= 0.5
        self.land = land
        # Mountains: ridges inside continents, an ice plateau over Antarctica.
        m = int(rng.integers(3, 6))
        dm = self._great_circle_deg(rng.uniform(-45.0, 60.0, m), rng.uniform(0.0, 360.0, m))
        ridges = (rng.uniform(0.5, 1.0, m)[:, None, None] * np.exp(-((dm / 12.0) ** 2))).sum(0)
        height = self.lsm * (120.0 + 2600.0 * np.clip(ridges, 0.0, 1.0) + 2200.0 * antarctica / 1.5)
        self.orography = height  # (m)
        self.z_static = _G * height
        texture = 0.5 + 0.5 * np.sin(2 * self.lam + rng.uniform(0, 2 * np.pi)) * np.cos(
            3 * self.phi + rng.uniform(0, 2 * np.pi)
        )
        self.slt = np.where(land, np.clip(1 + np.floor(7 * texture), 1, 7), 0.0)
        self.lat_mask = np.broadcast_to(
            np.clip((80.0 - np.abs(self.lat_deg)) / 4.0, 0.0, 1.0), (self.h, self.w)
        ).copy()
        ocean = ~land
        self.wave_sea = ocean & (self.lat_mask > 0.0)
        coast = np.clip((0.5 - s) / 0.5, 0.0, 1.0)
        self.wmb = np.where(ocean, 30.0 + 5200.0 * np.sqrt(coast), 0.0)

    def static_fields(self) -> dict[str, Array]:
        """Every static field the variant needs, by dataset name, shape (H, W)."""
        fields = {"lsm": self.lsm, "z_static": self.z_static, "slt": self.slt,
                  "wmb": self.wmb, "lat_mask": self.lat_mask}
        if self.has_pollution:
            for s, e in self.emis.items():
                fields[f"static_{s}"] = e
                fields[f"static_{s}_log"] = np.log(e)
        return {k: np.broadcast_to(v, (self.h, self.w)) for k, v in fields.items()}

    # -- climate and waves -------------------------------------------------------------------

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
        self.t_gain = -1.2 * ds_dlnp / _RD  # T'(p) = t_gain * phi'(1000)  (K per m2 s-2)

    def _u_surface(self, lat_deg: Array) -> Array:
        """Zonal-mean surface wind (m s-1): trades, westerlies, polar easterlies."""
        return -7.0 * np.cos(np.deg2rad(3.0 * lat_deg))

    def _u_mean(self, lat_deg: Array, s_p: Array) -> Array:
        """Zonal-mean wind (m s-1) at vertical-structure value ``s_p``."""
        jet = 28.0 * np.exp(-(((np.abs(lat_deg) - 35.0) / 10.0) ** 2))
        return self._u_surface(lat_deg) + jet * s_p

    def _make_climate(self) -> None:
        self._level_shape()
        # Mean sea-level pressure in geostrophic balance with the surface wind:
        # d p / d phi = -f rho R u.
        fine = np.linspace(-90.0, 90.0, 3601)
        f = 2 * _OMEGA * np.sin(np.deg2rad(fine))
        dpdphi = -f * _RHO0 * _R_EARTH * self._u_surface(fine)
        p = np.concatenate([[0.0], np.cumsum(0.5 * (dpdphi[1:] + dpdphi[:-1]) * np.deg2rad(0.05))])
        p -= np.average(p, weights=np.cos(np.deg2rad(fine)))
        self.msl_mean = 101_325.0 + np.interp(self.lat_deg, fine, p)
        self.p_tropopause = 100.0 + 200.0 * self.sin_phi**2  # (hPa)
        self.u_mean = self._u_mean(self.lat_deg, self.s_p)  # (L, H, 1)
        s850 = np.clip(np.log(1000.0 / 850.0) / np.log(4.0), 0.0, 1.0)
        self.u_steer = self._u_mean(self.lat_deg, np.asarray(s850))  # (H, 1)
        f_abs = 2 * _OMEGA * np.maximum(np.abs(self.sin_phi), np.sin(np.deg2rad(12.0)))
        self.f = np.where(self.lat_deg >= 0.0, f_abs, -f_abs)
        self.cos_safe = np.maximum(self.cos_phi, 0.05)
        self.subtropics = np.exp(-(((np.abs(self.lat_deg) - 25.0) / 8.0) ** 2))

    def _make_bands(self, rng: np.random.Generator) -> list[_Band]:
        bands = []
        for center, width, amp in ((45.0, 14.0, 2200.0), (-50.0, 14.0, 2600.0),
                                   (12.0, 8.0, 60.0)):
            center += rng.uniform(-4.0, 4.0)
            kk = np.sort(rng.choice(np.arange(3, 9), size=3, replace=False)).astype(float)
            a = rng.uniform(0.5, 1.0, 3)
            a /= a.sum()
            steer = float(self._u_mean(np.asarray(center), np.asarray(0.35)))
            rad_per_h = steer / (_R_EARTH * np.cos(np.deg2rad(center))) * 3600.0
            bands.append(_Band(
                center=center, width=width, amp=amp * rng.uniform(0.85, 1.15), k=kk, a=a,
                omega=rad_per_h * rng.uniform(0.75, 1.0, 3), tilt=rng.uniform(-1.5, 1.5, 3),
                phase=rng.uniform(0, 2 * np.pi, 3), life=rng.uniform(96.0, 240.0, 3),
                life_phase=rng.uniform(0, 2 * np.pi, 3),
            ))
        return bands

    def _waves(self, t_h: float) -> tuple[Array, Array, Array]:
        """Geopotential anomaly at 1000 hPa (m2 s-2) and its geostrophic wind (m s-1), (H, W)."""
        phi_a = np.zeros((self.h, self.w))
        dlam = np.zeros((self.h, self.w))
        dphi = np.zeros((self.h, self.w))
        for b in self.bands:
            g = -(((self.lat_deg - b.center) / b.width) ** 2)
            e = b.amp * np.exp(g)
            env = e * self.cos_phi**2
            # d/dphi of exp(g) cos^2(phi), written without tan so it stays finite at the poles.
            denv = e * (-2.0 * (self.lat_deg - b.center) / b.width**2 * np.rad2deg(1.0)
                        * self.cos_phi**2 - 2.0 * self.cos_phi * self.sin_phi)
            for j in range(b.k.size):
                amp = b.a[j] * (1.0 + 0.35 * np.sin(2 * np.pi * t_h / b.life[j] + b.life_phase[j]))
                # cos/sin of (lon part + lat part), separably: trig on (1, W) and (H, 1) only.
                along = b.k[j] * (self.lam - b.omega[j] * t_h) + b.phase[j]
                across = b.tilt[j] * self.phi
                ca, sa, cb, sb = np.cos(along), np.sin(along), np.cos(across), np.sin(across)
                c = ca * cb - sa * sb
                s = sa * cb + ca * sb
                phi_a += amp * env * c
                dlam -= amp * env * b.k[j] * s
                dphi += amp * (denv * c - env * b.tilt[j] * s)
        u_g = -dphi / (self.f * _R_EARTH)
        v_g = dlam / (self.f * _R_EARTH * self.cos_safe)
        return phi_a, u_g, v_g

    # -- one time step -----------------------------------------------------------------------

    def _gauss(self, shape: tuple[int, ...]) -> Array:
        """Standard normal noise of ``shape`` (float32: half the cost of float64)."""
        return self.noise.standard_normal(shape, dtype=np.float32)

    def step(self, t_h: float, dt_h: float, *, wanted: set[str]) -> dict[str, Array]:
        """Fields at ``t_h`` hours after the epoch; advances tracers and sea state by ``dt_h``.

        Returns:
            Dataset name -> array, ``(H, W)`` for surface and ``(L, H, W)`` for atmospheric
            variables, for at least the names in ``wanted``.
        """
        out: dict[str, Array] = {}
        hw = (self.h, self.w)
        when = _EPOCH + np.timedelta64(round(t_h * 3600), "s")
        doy = (when - when.astype("datetime64[Y]")) / np.timedelta64(1, "D")
        hour_utc = (t_h % 24.0 + 24.0) % 24.0
        decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 81.0) / 365.25)
        season = np.sin(decl) / np.sin(np.deg2rad(23.44))  # +1 at the northern summer solstice
        lst = hour_utc + self.lon_deg / 15.0  # local solar time (h), (1, W)
        hour_angle = 2 * np.pi * (lst - 12.0) / 24.0
        cos_sza = self.sin_phi * np.sin(decl) + self.cos_phi * np.cos(decl) * np.cos(hour_angle)
        daylight = np.clip(cos_sza, 0.0, 1.0)  # (H, W)

        phi_a, u_g, v_g = self._waves(t_h)

        # Column temperature at sea level (K): warm equator, summer hemisphere warmer.
        t_col = 301.0 - 48.0 * self.sin_phi**2 + 9.0 * season * self.sin_phi * np.abs(self.sin_phi)
        msl = self.msl_mean + _RHO0 * phi_a
        t_anom = self.t_gain * phi_a  # (L, H, W)
        temp, geo = _column(self.p, t_col, msl / 100.0, self.p_tropopause)
        temp = temp + t_anom
        geo = geo + (self.wave_gain - 1.0) * phi_a
        u = self.u_mean + self.wave_gain * u_g
        v = self.wave_gain * v_g

        # Diurnal cycle in local solar time, peaking mid-afternoon, strongest over land.
        diurnal_amp = (1.5 + 6.5 * self.lsm) * np.clip(np.cos(self.phi - decl), 0.1, 1.0)
        diurnal = diurnal_amp * np.cos(2 * np.pi * (lst - 15.0) / 24.0)
        temp = temp + 0.3 * diurnal * (self.p >= 925.0)
        t2m = (t_col + _T_GAIN_SURFACE * phi_a + diurnal
               + 6.0 * season * self.sin_phi * self.lsm - _GAMMA * self.orography)

        # 10 m wind: the 1000 hPa wind slowed and turned toward low pressure.
        u_sfc = self._u_surface(self.lat_deg) + u_g
        v_sfc = v_g
        factor = 0.8 - 0.25 * self.lsm
        turn = np.deg2rad(20.0 + 15.0 * self.lsm) * np.where(self.lat_deg >= 0.0, 1.0, -1.0)
        u10 = factor * (u_sfc * np.cos(turn) - v_sfc * np.sin(turn))
        v10 = factor * (u_sfc * np.sin(turn) + v_sfc * np.cos(turn))

        if "q" in wanted:
            rh0 = 0.82 - 0.3 * self.subtropics - 0.12 * self.lsm
            rh = rh0 * (self.p / 1000.0) ** 1.3 + 0.08 * np.tanh(v * np.sign(self.lat_deg) / 10.0)
            # The stratosphere is drier still, so that q keeps decreasing with height there.
            rh = np.clip(rh, 0.02, 0.97) * np.minimum(self.p / self.p_tropopause, 1.0) ** 1.5
            out["q"] = np.minimum(rh * _q_sat(temp, self.p), 0.04) * np.exp(
                0.02 * self._gauss(temp.shape))
        if wanted:
            out["2t"] = t2m + 0.25 * self._gauss(hw)
            out["msl"] = msl + 25.0 * self._gauss(hw)
            out["10u"] = u10 + 0.3 * self._gauss(hw)
            out["10v"] = v10 + 0.3 * self._gauss(hw)
            out["t"] = temp + 0.15 * self._gauss(temp.shape)
            out["z"] = geo + 8.0 * self._gauss(geo.shape)
            out["u"] = u + 0.3 * self._gauss(geo.shape)
            out["v"] = v + 0.3 * self._gauss(geo.shape)

        if self.has_pollution:
            s850 = float(np.clip(np.log(1000.0 / 850.0) / np.log(4.0), 0.0, 1.0))
            u850 = self.u_steer + (1.0 + 1.2 * s850) * u_g
            v850 = (1.0 + 1.2 * s850) * v_g
            self._pollution(out, u850, v850, daylight, lst, phi_a, dt_h, wanted)
        if self.has_waves:
            self._sea(out, u10, v10, t_h, dt_h, wanted)
        return out

    # -- air pollution -----------------------------------------------------------------------

    _LIFETIME_H: ClassVar[dict[str, float]] = {"co": 120.0, "nox": 24.0, "so2": 48.0, "pm": 96.0}

    def _make_emissions(self, rng: np.random.Generator) -> None:
        dlat = 180.0 / (self.h - 1)
        dlon = 360.0 / self.w
        width = max(3.0, 0.9 * max(dlat, dlon))
        candidates = np.flatnonzero(self.land & (np.abs(self.lat_deg) < 60.0))
        n = min(int(rng.integers(10, 16)), candidates.size)
        picks = rng.choice(candidates, size=n, replace=False) if n else np.array([], dtype=int)
        iy, ix = np.unravel_index(picks, (self.h, self.w))
        lat_c = self.lat_deg[iy, 0] + rng.uniform(-0.3, 0.3, n) * dlat
        lon_c = self.lon_deg[0, ix] + rng.uniform(-0.3, 0.3, n) * dlon
        kernel = np.exp(-((self._great_circle_deg(lat_c, lon_c) / width) ** 2))  # (N, H, W)
        size = rng.lognormal(0.0, 0.5, n)[:, None, None]

        def cities(scale: float, spread: float) -> Array:
            weights = size * rng.lognormal(0.0, spread, n)[:, None, None]
            return np.asarray(scale * (weights * kernel).sum(axis=0))

        farmland = self.lsm * (0.5 + 0.5 * np.cos(2 * self.lam + rng.uniform(0, 2 * np.pi)) ** 2)
        base = np.full((self.h, self.w), 1e-15)
        # Emission fluxes (kg m-2 s-1).
        self.emis = {
            "ammonia": base + 3e-11 * farmland * np.cos(self.phi) + cities(5e-11, 0.3),
            "co": base + 2e-12 * self.lsm + cities(5e-9, 0.3),
            "nox": base + 2e-13 * self.lsm + cities(3e-10, 0.3),
            "so2": base + 1e-13 * self.lsm + cities(2e-10, 0.8),
        }
        self.emis = {k: np.broadcast_to(v, (self.h, self.w)).copy() for k, v in self.emis.items()}
        self.anthro = cities(1.0, 0.0) / max(float(cities(1.0, 0.0).max()), 1e-12)

    def _advect(self, c: Array, u: Array, v: Array, dt_s: float) -> Array:
        """Semi-Lagrangian advection of ``c`` (H, W) by winds (m s-1) over ``dt_s`` seconds."""
        lat_d = np.clip(self.lat_deg - np.rad2deg(v * dt_s / _R_EARTH), -90.0, 90.0)
        lon_d = self.lon_deg - np.rad2deg(u * dt_s / (_R_EARTH * np.maximum(self.cos_phi, 0.2)))
        fi = (90.0 - lat_d) / (180.0 / (self.h - 1))
        fj = np.mod(lon_d, 360.0) / (360.0 / self.w)
        i0 = np.clip(np.floor(fi).astype(np.int64), 0, self.h - 2)
        wi = np.clip(fi - i0, 0.0, 1.0)
        j0f = np.floor(fj)
        wj = fj - j0f
        j0 = j0f.astype(np.int64) % self.w
        j1 = (j0 + 1) % self.w
        top = c[i0, j0] * (1 - wj) + c[i0, j1] * wj
        bottom = c[i0 + 1, j0] * (1 - wj) + c[i0 + 1, j1] * wj
        return np.asarray(top * (1 - wi) + bottom * wi)

    def _pollution(
        self, out: dict[str, Array], u: Array, v: Array, daylight: Array, lst: Array,
        phi_a: Array, dt_h: float, wanted: set[str],
    ) -> None:
        """Advance the tracer burdens (kg m-2) and write the species fields."""
        source = {"co": self.emis["co"], "nox": self.emis["nox"], "so2": self.emis["so2"],
                  "pm": self.emis["ammonia"] + 0.3 * self.emis["so2"] + 0.02 * self.emis["co"]}
        if self.tracers is None:
            self.tracers = {k: e * self._LIFETIME_H[k] * 3600.0 for k, e in source.items()}
        burden = self.tracers
        u_b = np.broadcast_to(u, (self.h, self.w))
        v_b = np.broadcast_to(v, (self.h, self.w))
        for k, e in source.items():
            tau = self._LIFETIME_H[k] * 3600.0
            decay = np.exp(-dt_h * 3600.0 / tau)
            burden[k] = self._advect(burden[k], u_b, v_b, dt_h * 3600.0) * decay + e * tau * (
                1 - decay)
        if not wanted:
            return
        hw = (self.h, self.w)

        def jitter(shape: tuple[int, ...] = hw) -> Array:
            # 1 + 3 % noise; a float32 normal never reaches -33 sigma, so this stays positive.
            return np.maximum(1.0 + 0.03 * self._gauss(shape), 0.5)

        # Boundary layer (m): deep in the afternoon over land, shallow at night.
        bl = 700.0 + 600.0 * self.lsm * np.cos(2 * np.pi * (lst - 14.0) / 24.0) + 300.0 * (
            1 - self.lsm)
        nh = 0.5 + 0.5 * self.sin_phi
        wind = np.hypot(u, v)
        # Surface particulate matter (kg m-3).
        sea_salt = (1 - self.lsm) * 6e-9 * (1.0 + (wind / 8.0) ** 2)
        dust = self.lsm * 8e-9 * (0.5 + self.subtropics)
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
            6.2e-3 + 2.0e-3 * self.sin_phi**2 - 1.0e-6 * phi_a, 3e-3, 1.2e-2) * jitter()
        # Mixing ratios (kg kg-1) on pressure levels: surface air mixed upward by the boundary
        # layer, a free-troposphere background, and a stratospheric ozone layer.
        p = self.p
        mix = np.exp(-(1000.0 - p) / 120.0)  # (L, 1, 1)
        to_ratio = 1.0 / (bl * _RHO0)  # burden (kg m-2) -> surface mixing ratio (kg kg-1)
        lhw = (p.shape[0], self.h, self.w)
        out["co"] = (8e-8 + 4e-8 * nh + mix * burden["co"] * to_ratio * 0.5) * jitter(lhw)
        out["no2"] = (5e-11 + mix * 0.8 * burden["nox"] * to_ratio * (1.2 - 0.4 * daylight)
                      ) * jitter(lhw)
        out["no"] = (1e-11 + mix * 0.15 * burden["nox"] * to_ratio * photo) * jitter(lhw)
        out["so2"] = (3e-11 + mix * burden["so2"] * to_ratio) * jitter(lhw)
        strat = 1.2e-5 * np.exp(-(np.log(p / 15.0) ** 2) / 1.2) * (1.0 - 2e-4 * phi_a)
        surf_o3 = mix * 2.5e-8 * daylight * (1.0 + self.anthro)
        out["go3"] = (4e-8 + np.clip(strat, 0.0, None) + surf_o3) * jitter(lhw)

    # -- ocean waves -------------------------------------------------------------------------

    def _sea(
        self, out: dict[str, Array], u10: Array, v10: Array, t_h: float, dt_h: float,
        wanted: set[str],
    ) -> None:
        """Advance the wind sea and swells and write the wave fields."""
        wind = np.hypot(u10, v10)
        h_eq = 0.05 + 0.018 * wind**2  # fully developed wind-sea height (m)
        belt_s = np.exp(-(((self.lat_deg + 50.0) / 12.0) ** 2))
        belt_n = np.exp(-(((self.lat_deg - 48.0) / 12.0) ** 2))

        def belt_mean(belt: Array) -> float:
            weight = belt * self.cos_phi * self.wave_sea
            return float((h_eq * weight).sum() / max(float(weight.sum()), 1e-12))

        sw1_target = (0.4 + 1.6 * np.exp(-(((self.lat_deg + 50.0) / 25.0) ** 2))) * (
            0.5 + 0.5 * belt_mean(belt_s) / 2.0) * (
            1.0 + 0.3 * np.cos(2 * self.lam - 0.02 * t_h))
        sw2_target = (0.2 + 1.0 * np.exp(-(((self.lat_deg - 45.0) / 22.0) ** 2))) * (
            0.5 + 0.5 * belt_mean(belt_n) / 2.0) * (
            1.0 + 0.3 * np.cos(3 * self.lam - 0.03 * t_h + 1.0))
        targets = {"ww": h_eq, "s1": sw1_target, "s2": sw2_target}
        lifetimes = {"ww": 9.0, "s1": 36.0, "s2": 30.0}
        if self.sea is None:
            self.sea = {k: np.broadcast_to(v, (self.h, self.w)).copy() for k, v in targets.items()}
        for k, target in targets.items():
            r = np.exp(-dt_h / lifetimes[k])
            self.sea[k] = target + (self.sea[k] - target) * r
        if not wanted:
            return
        hw = (self.h, self.w)
        sea = self.wave_sea
        hww = self.sea["ww"] * np.exp(0.02 * self._gauss(hw))
        sw1 = self.sea["s1"] * np.exp(0.02 * self._gauss(hw))
        sw2 = self.sea["s2"] * np.exp(0.02 * self._gauss(hw))
        # Wind sea: coming from where the wind comes from; period of a sea of this height.
        dir_ww = _from_direction(u10, v10)
        tp_ww = 1.5 + 0.73 * np.sqrt(hww / 0.018)
        dir1 = 215.0 + 25.0 * np.sin(self.lam + 0.5) + 10.0 * self.sin_phi
        dir2 = 295.0 + 20.0 * np.cos(2 * self.lam)
        tp1 = 10.5 + 1.5 * sw1
        tp2 = 8.5 + 1.2 * sw2
        e1, e2, eww = sw1**2, sw2**2, hww**2
        shts = np.sqrt(e1 + e2)
        mdts = _mean_direction((e1, dir1), (e2, dir2))
        mpts = (e1 * tp1 + e2 * tp2) / (e1 + e2)
        swh = np.sqrt(eww + e1 + e2)
        mwd = _mean_direction((eww, dir_ww), (e1 + e2, mdts))
        mpww = 0.85 * tp_ww
        mwp = (eww * mpww + (e1 + e2) * 0.9 * mpts) / (eww + e1 + e2)
        swell_peak = np.where(e1 >= e2, tp1, tp2)
        pp1d = np.where(eww >= e1 + e2, tp_ww, swell_peak)
        fields = {
            "swh": swh, "mwd": mwd, "mwp": mwp, "pp1d": pp1d,
            "shww": hww, "mdww": dir_ww, "mpww": mpww,
            "shts": shts, "mdts": mdts, "mpts": mpts,
            "swh1": sw1, "mwd1": np.mod(dir1, 360.0), "mwp1": 0.9 * tp1,
            "swh2": sw2, "mwd2": np.mod(dir2, 360.0), "mwp2": 0.9 * tp2,
        }
        for name, value in fields.items():
            out[name] = np.where(sea, value, 0.0)
        out["wind"] = wind
        out["10u_wave"] = u10
        out["10v_wave"] = v10


def _column(p: Array, t_s: Array, p_s: Array, p_tr: Array) -> tuple[Array, Array]:
    """Temperature (K) and geopotential (m2 s-2) of a constant-lapse-rate troposphere.

    Args:
        p: Pressure levels (hPa), shape (L, 1, 1).
        t_s: Temperature at pressure ``p_s`` (K), broadcastable to (H, W).
        p_s: Sea-level pressure (hPa), (H, W); geopotential is 0 there.
        p_tr: Tropopause pressure (hPa), broadcastable to (H, W); above it temperature rises
            slowly (2 K per e-fold of pressure).
    """
    x = (p / p_s) ** _KAPPA
    t_lo = t_s * x
    z_lo = t_s * _G / _GAMMA * (1.0 - x)
    x_tr = (p_tr / p_s) ** _KAPPA
    t_tr = t_s * x_tr
    z_tr = t_s * _G / _GAMMA * (1.0 - x_tr)
    y = np.clip(np.log(p_tr / p), 0.0, None)
    t_hi = t_tr + 2.0 * y
    z_hi = z_tr + _RD * (t_tr * y + y**2)
    above = p < p_tr
    return np.where(above, t_hi, t_lo), np.where(above, z_hi, z_lo)


def _q_sat(t: Array, p: Array) -> Array:
    """Saturation specific humidity (kg kg-1) at temperature ``t`` (K) and pressure ``p`` (hPa)."""
    e_s = 611.2 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    p_pa = p * 100.0
    return np.asarray(0.622 * e_s / np.maximum(p_pa - 0.378 * e_s, 0.5 * p_pa))


def _from_direction(u: Array, v: Array) -> Array:
    """Meteorological direction (degrees clockwise from north) the flow ``(u, v)`` comes from."""
    return np.asarray(np.mod(np.rad2deg(np.arctan2(-u, -v)), 360.0))


def _mean_direction(*parts: tuple[Array, Array]) -> Array:
    """Energy-weighted circular mean (degrees in [0, 360)) of ``(energy, direction)`` pairs."""
    s = sum(e * np.sin(np.deg2rad(d)) for e, d in parts)
    c = sum(e * np.cos(np.deg2rad(d)) for e, d in parts)
    return np.asarray(np.mod(np.rad2deg(np.arctan2(s, c)), 360.0))

