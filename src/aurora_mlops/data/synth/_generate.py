"""``synthesize``: a canonical dataset from the toy atmosphere, tracers and sea, step by step."""

from __future__ import annotations

import logging
import time as _time
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops._version import __version__
from aurora_mlops.data._layout import ATMOS_DIMS, LAYOUT_TAG, STATIC_DIMS, SURF_DIMS
from aurora_mlops.data.synth._atmosphere import Atmosphere
from aurora_mlops.data.synth._drift import SynthDrift, apply_drift
from aurora_mlops.data.synth._geography import Geography
from aurora_mlops.data.synth._physics import EPOCH, Array
from aurora_mlops.data.synth._pollution import Pollution
from aurora_mlops.data.synth._sea import Sea
from aurora_mlops.errors import ConfigError
from aurora_mlops.variables import VariableSpec
from aurora_mlops.variants import VariantSpec, get_variant

__all__ = ["synthesize"]

log = logging.getLogger(__name__)

#: Steps simulated before the first time, so tracers and waves start near their own climate.
_SPIN_UP_STEPS = 8
_DEFAULT_DAYS = 28


class _World:
    """Geography, atmosphere and (for the variants that have them) tracers and sea state."""

    def __init__(
        self, spec: VariantSpec, lat: Array, lon: Array, levels: tuple[int, ...], seed: int
    ) -> None:
        root = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x5EED])
        geo_ss, wave_ss, city_ss, noise_ss = root.spawn(4)
        self.noise = np.random.default_rng(noise_ss)
        self.geo = Geography(lat, lon, np.random.default_rng(geo_ss))
        self.atmosphere = Atmosphere(self.geo, levels, np.random.default_rng(wave_ss))
        surf = set(spec.surf_vars)
        self.pollution = (Pollution(self.geo, np.random.default_rng(city_ss))
                          if "pm10" in surf else None)
        self.sea = Sea(self.geo) if "swh" in surf else None

    def gauss(self, shape: tuple[int, ...]) -> Array:
        """Standard normal noise of ``shape`` (float32: half the cost of float64)."""
        return self.noise.standard_normal(shape, dtype=np.float32)

    def static_fields(self) -> dict[str, Array]:
        """Every static field, by dataset name, shape (H, W)."""
        fields = self.geo.static_fields()
        if self.pollution is not None:
            fields.update(self.pollution.static_fields())
        return fields

    def step(self, t_h: float, dt_h: float, *, wanted: set[str]) -> dict[str, Array]:
        """Fields at ``t_h`` hours after the epoch; advances tracers and sea state by ``dt_h``.

        Returns:
            Dataset name -> array, ``(H, W)`` for surface and ``(L, H, W)`` for atmospheric
            variables, for at least the names in ``wanted``.
        """
        weather = self.atmosphere.step(t_h, self.gauss, wanted)
        out = weather.fields
        if self.pollution is not None:
            self.pollution.step(out, weather, self.atmosphere.p, dt_h, self.gauss, wanted)
        if self.sea is not None:
            self.sea.step(out, weather, t_h, dt_h, self.gauss, wanted)
        return out


def _check(n_times: int, h: int, w: int, profile: str, start: str) -> pd.Timestamp:
    """The first time, after checking the arguments (ConfigError naming the bad one)."""
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
    return t0


def synthesize(
    variant: str | VariantSpec,
    *,
    times: int | None = None,
    grid: tuple[int, int] | None = None,
    seed: int = 0,
    profile: Literal["smoke", "production"] = "smoke",
    start: str = "2024-01-01T00:00",
    drift: SynthDrift | None = None,
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
        drift: A drift laid over the fields from its start on (see :class:`SynthDrift`); the
            fields before it are those of the same seed without drift.

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
    t0 = _check(n_times, h, w, profile, start)
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
    hours = (time - EPOCH) / np.timedelta64(1, "h")
    for k in range(_SPIN_UP_STEPS, 0, -1):  # spin the world up before the first time
        world.step(float(hours[0]) - k * step_h, step_h, wanted=set())
    for i, t_h in enumerate(hours):
        fields = world.step(float(t_h), step_h, wanted=wanted)
        for name in wanted:
            out[name][i] = fields[name]
    if drift is not None:
        apply_drift(out, time, drift)
    ds = _dataset(spec, variables, out, world.static_fields(), time, lat, lon, levels)
    ds.attrs.update({"seed": int(seed), "profile": profile, "timestep_hours": int(step_h)})
    if drift is not None:
        ds.attrs["drift"] = f"{drift.kind} from {drift.start} at {drift.rate:g} per day"
    log.info(
        "synthesised %s: %d times x %d levels x %dx%d grid, seed %d, in %.2f s",
        spec.name, n_times, len(levels), h, w, seed, _time.perf_counter() - tic,
    )
    return ds


def _dataset(
    spec: VariantSpec, variables: list[VariableSpec], out: dict[str, Array],
    static: dict[str, Array], time: Array, lat: Array, lon: Array, levels: tuple[int, ...],
) -> xr.Dataset:
    """The canonical dataset of the generated arrays (``out`` is emptied)."""
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
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "layout": LAYOUT_TAG,
            "variant": spec.name,
            "generator": f"aurora_mlops.data.synthesize (aurora-mlops {__version__})",
        },
    )


def _finish(v: VariableSpec, arr: Array) -> Array:
    """Keep float32 rounding from pushing a value out of the variable's range (in place)."""
    if v.angle:
        arr[arr >= 360.0] -= 360.0
    np.clip(arr, v.valid_min, v.valid_max, out=arr)
    return arr
