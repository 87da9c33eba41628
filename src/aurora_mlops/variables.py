"""The one variable vocabulary: Aurora's names, units, physical ranges and foreign aliases.

Every dataset this project reads is mapped onto these names (see :mod:`aurora_mlops.data`),
every validator checks these ranges, and every variant lists its variables from this table.

Static variables and atmospheric variables share the name ``z`` in Aurora (surface
geopotential and geopotential on pressure levels). In a dataset both live side by side, so a
static variable is stored under :attr:`VariableSpec.store_name`, which is ``z_static`` for
``z`` and the Aurora name for every other variable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "STANDARD_LEVELS",
    "VARIABLES",
    "VariableKind",
    "VariableSpec",
    "alias_table",
    "static_store_name",
]

VariableKind = Literal["surf", "static", "atmos"]

#: The 13 pressure levels (hPa) that Aurora's normalisation statistics cover.
STANDARD_LEVELS: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)


class VariableSpec(BaseModel):
    """One physical variable as Aurora names it.

    Attributes:
        name: Aurora's name (``2t``, ``z``, ``swh`` ...).
        kind: ``surf`` (time, lat, lon), ``atmos`` (time, level, lat, lon) or ``static`` (lat, lon).
        units: CF-style units string stored in the ``units`` attribute.
        long_name: Human-readable description.
        valid_min: Smallest physically plausible value (in ``units``).
        valid_max: Largest physically plausible value (in ``units``).
        aliases: Other names for the same field (CDS short names, WeatherBench2 long names, GRIB).
        positive: The field cannot be negative (concentrations, wave heights, periods).
        angle: The field is a direction in degrees (scored and validated as circular).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: VariableKind
    units: str
    long_name: str
    valid_min: float
    valid_max: float
    aliases: tuple[str, ...] = ()
    positive: bool = False
    angle: bool = False

    @property
    def store_name(self) -> str:
        """The variable's name inside a canonical dataset."""
        return static_store_name(self.name) if self.kind == "static" else self.name


def static_store_name(name: str) -> str:
    """Dataset name of the static variable ``name`` (``z`` becomes ``z_static``)."""
    return "z_static" if name == "z" else name


def _v(
    name: str,
    kind: VariableKind,
    units: str,
    long_name: str,
    lo: float,
    hi: float,
    *aliases: str,
    positive: bool = False,
    angle: bool = False,
) -> VariableSpec:
    return VariableSpec(
        name=name,
        kind=kind,
        units=units,
        long_name=long_name,
        valid_min=lo,
        valid_max=hi,
        aliases=aliases,
        positive=positive,
        angle=angle,
    )


_SPECIES_SURF = [
    ("pm1", "kg m-3", "particulate matter d < 1 um", 0.0, 1e-2),
    ("pm2p5", "kg m-3", "particulate matter d < 2.5 um", 0.0, 1e-2),
    ("pm10", "kg m-3", "particulate matter d < 10 um", 0.0, 1e-2),
    ("tcco", "kg m-2", "total column carbon monoxide", 0.0, 1.0),
    ("tc_no", "kg m-2", "total column nitrogen monoxide", 0.0, 1.0),
    ("tcno2", "kg m-2", "total column nitrogen dioxide", 0.0, 1.0),
    ("gtco3", "kg m-2", "GEMS total column ozone", 0.0, 1.0),
    ("tcso2", "kg m-2", "total column sulphur dioxide", 0.0, 1.0),
]
_SPECIES_ATMOS = [
    ("co", "carbon monoxide mass mixing ratio"),
    ("no", "nitrogen monoxide mass mixing ratio"),
    ("no2", "nitrogen dioxide mass mixing ratio"),
    ("go3", "GEMS ozone mass mixing ratio"),
    ("so2", "sulphur dioxide mass mixing ratio"),
]
_WAVE_HEIGHTS = [
    ("swh", "significant height of combined wind waves and swell"),
    ("shww", "significant height of wind waves"),
    ("shts", "significant height of total swell"),
    ("swh1", "significant wave height of first swell partition"),
    ("swh2", "significant wave height of second swell partition"),
]
_WAVE_DIRECTIONS = [
    ("mwd", "mean wave direction"),
    ("mdww", "mean direction of wind waves"),
    ("mdts", "mean direction of total swell"),
    ("mwd1", "mean wave direction of first swell partition"),
    ("mwd2", "mean wave direction of second swell partition"),
]
_WAVE_PERIODS = [
    ("mwp", "mean wave period"),
    ("pp1d", "peak wave period"),
    ("mpww", "mean period of wind waves"),
    ("mpts", "mean period of total swell"),
    ("mwp1", "mean wave period of first swell partition"),
    ("mwp2", "mean wave period of second swell partition"),
]

_ALL: list[VariableSpec] = [
    # Weather, surface.
    _v("2t", "surf", "K", "2 metre temperature", 170.0, 350.0, "t2m", "2m_temperature"),
    _v("10u", "surf", "m s-1", "10 metre U wind", -120.0, 120.0, "u10",
       "10m_u_component_of_wind"),
    _v("10v", "surf", "m s-1", "10 metre V wind", -120.0, 120.0, "v10",
       "10m_v_component_of_wind"),
    _v("msl", "surf", "Pa", "mean sea level pressure", 85_000.0, 110_000.0,
       "mean_sea_level_pressure", "prmsl"),
    # Not an Aurora input: observed precipitation, for event scores (Stage IV, ERA5 tp).
    _v("tp", "surf", "m", "total precipitation accumulated over the time step", 0.0, 1.0,
       "total_precipitation", "total_precipitation_6hr", positive=True),
    # Weather, pressure levels.
    _v("z", "atmos", "m2 s-2", "geopotential", -10_000.0, 400_000.0, "geopotential", "gh"),
    _v("u", "atmos", "m s-1", "U wind", -250.0, 250.0, "u_component_of_wind"),
    _v("v", "atmos", "m s-1", "V wind", -250.0, 250.0, "v_component_of_wind"),
    _v("t", "atmos", "K", "temperature", 150.0, 350.0, "temperature"),
    _v("q", "atmos", "kg kg-1", "specific humidity", -1e-4, 0.1, "specific_humidity"),
    # Static.
    _v("lsm", "static", "1", "land-sea mask", 0.0, 1.0, "land_sea_mask"),
    _v("z", "static", "m2 s-2", "surface geopotential", -5_000.0, 100_000.0,
       "geopotential_at_surface"),
    _v("slt", "static", "1", "soil type", 0.0, 7.0, "soil_type"),
    # Air pollution.
    *[_v(n, "surf", u, ln, lo, hi, positive=True) for n, u, ln, lo, hi in _SPECIES_SURF],
    *[_v(n, "atmos", "kg kg-1", ln, 0.0, 1e-2, positive=True) for n, ln in _SPECIES_ATMOS],
    *[
        _v(f"static_{s}{sfx}", "static", "1" if sfx else "kg m-2 s-1",
           f"{s} emissions{' (log)' if sfx else ''}",
           -50.0 if sfx else 0.0, 50.0 if sfx else 1e3, positive=not sfx)
        for s in ("ammonia", "co", "nox", "so2")
        for sfx in ("", "_log")
    ],
    # Ocean waves.
    *[_v(n, "surf", "m", ln, 0.0, 30.0, positive=True) for n, ln in _WAVE_HEIGHTS],
    *[_v(n, "surf", "degree", ln, 0.0, 360.0, angle=True) for n, ln in _WAVE_DIRECTIONS],
    *[_v(n, "surf", "s", ln, 0.0, 40.0, positive=True) for n, ln in _WAVE_PERIODS],
    _v("wind", "surf", "m s-1", "10 metre wind speed used by the wave model", 0.0, 100.0,
       positive=True),
    _v("10u_wave", "surf", "m s-1", "10 metre U wind used by the wave model", -100.0, 100.0),
    _v("10v_wave", "surf", "m s-1", "10 metre V wind used by the wave model", -100.0, 100.0),
    _v("wmb", "static", "m", "model bathymetry", 0.0, 12_000.0),
    _v("lat_mask", "static", "1", "latitude mask of the wave model", 0.0, 1.0),
]

#: Every variable, keyed by ``(kind, name)``; ``z`` exists as ``atmos`` and ``static``.
VARIABLES: dict[tuple[VariableKind, str], VariableSpec] = {(v.kind, v.name): v for v in _ALL}


def alias_table() -> dict[str, str]:
    """Map every foreign name (and every Aurora name) to the canonical dataset name.

    The ambiguous ``z`` maps to the atmospheric field; readers resolve surface geopotential by
    dimensions (a ``z`` without a level dimension is static).
    """
    table: dict[str, str] = {}
    for spec in _ALL:
        for alias in (spec.name, *spec.aliases):
            table.setdefault(alias, spec.store_name)
    return table
