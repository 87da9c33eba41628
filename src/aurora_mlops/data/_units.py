"""The one unit normaliser: which spellings mean a vocabulary unit, and which convert to it.

The reader (:func:`aurora_mlops.data.open_dataset`) and the validator
(:func:`aurora_mlops.data.validate`) both ask here, so a unit the reader accepts unchanged is a
unit the validator accepts, and one it converts is one the validator would have refused as is.

A spelling is compared by its :func:`unit_key`: without ``**``, ``^``, spaces and case, so
``m s**-1``, ``m s^-1`` and ``M S-1`` are one key (``ms-1``).
"""

from __future__ import annotations

__all__ = ["G0", "UNIT_CONVERSIONS", "conversion", "spells", "unit_key"]

#: Standard gravity (m s-2), to turn geopotential height (gpm) into geopotential (m2 s-2).
G0 = 9.80665

#: Spellings (as :func:`unit_key`) of each vocabulary unit that need no conversion.
_SAME_UNITS: dict[str, frozenset[str]] = {
    "1": frozenset({"", "1", "~", "-", "(0-1)", "0-1", "dimensionless", "fraction", "proportion",
                    "code", "codetable4.213", "numeric"}),
    "m": frozenset({"m", "metre", "meter", "metres", "meters", "mofwaterequivalent"}),
    "K": frozenset({"k", "kelvin"}),
    "Pa": frozenset({"pa", "pascal"}),
    "m s-1": frozenset({"ms-1", "m/s"}),
    "m2 s-2": frozenset({"m2s-2", "m2/s2"}),
    "kg kg-1": frozenset({"kgkg-1", "kg/kg"}),
    "degree": frozenset({"degree", "degrees", "degreetrue", "degree_true", "degrees_true",
                         "deg"}),
    "s": frozenset({"s", "second", "seconds"}),
    "kg m-2": frozenset({"kgm-2", "kg/m2"}),
    "kg m-3": frozenset({"kgm-3", "kg/m3"}),
    "kg m-2 s-1": frozenset({"kgm-2s-1"}),
}

#: (vocabulary unit, source unit key) -> (scale, offset): canonical = source * scale + offset.
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("m2 s-2", "gpm"): (G0, 0.0),
    ("m2 s-2", "m"): (G0, 0.0),
    ("m", "mm"): (1e-3, 0.0),
    ("m", "kgm-2"): (1e-3, 0.0),
    ("m", "kg/m2"): (1e-3, 0.0),
    ("Pa", "hpa"): (100.0, 0.0),
    ("Pa", "mb"): (100.0, 0.0),
    ("Pa", "millibars"): (100.0, 0.0),
    ("K", "degc"): (1.0, 273.15),
    ("K", "c"): (1.0, 273.15),
    ("K", "celsius"): (1.0, 273.15),
    ("m s-1", "kmh-1"): (1.0 / 3.6, 0.0),
}


def unit_key(units: str) -> str:
    """The spelling-insensitive key of a units string (``m s**-1`` -> ``ms-1``)."""
    return units.replace("**", "").replace("^", "").replace(" ", "").lower()


def spells(units: str, vocabulary_units: str) -> bool:
    """Whether ``units`` (any spelling, or already a key) means ``vocabulary_units`` as is.

    Args:
        units: A units attribute as found in a file (``m s**-1``, ``kelvin``, ``(0 - 1)``).
        vocabulary_units: A unit of :data:`aurora_mlops.variables.VARIABLES` (``m s-1``).
    """
    key = unit_key(units)
    return key == unit_key(vocabulary_units) or key in _SAME_UNITS.get(vocabulary_units, ())


def conversion(units: str, vocabulary_units: str) -> tuple[float, float] | None:
    """``(scale, offset)`` that turn values in ``units`` into ``vocabulary_units``, or ``None``
    when there is no known conversion (``hPa`` -> ``Pa`` is ``(100, 0)``)."""
    return UNIT_CONVERSIONS.get((vocabulary_units, unit_key(units)))
