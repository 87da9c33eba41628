"""What the validator's phases share: the dataset under check, the problems and the audit so far.

:class:`Checks` is filled by the structure phase (:mod:`._validate_structure`), read and
extended by the values phase (:mod:`._validate_values`), and turned into the audit report by
:mod:`._validate_report`. The small formatters here keep every message and table in one style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aurora_mlops.data._layout import ATMOS_DIMS, STATIC_DIMS, SURF_DIMS
from aurora_mlops.variables import VariableSpec
from aurora_mlops.variants import VariantSpec

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "Checks",
    "expected_dims",
    "file_size",
    "fmt_hours",
    "fmt_num",
    "fmt_time",
    "join",
    "json_num",
    "pct",
]


def fmt_time(t: np.datetime64) -> str:
    """``2024-01-01T18:00``."""
    return str(np.datetime_as_string(t, unit="m"))


def fmt_num(x: float) -> str:
    """Six significant digits."""
    return f"{x:.6g}"


def pct(fraction: float) -> str:
    """A fraction as a percentage (``0.03125`` -> ``3.125%``)."""
    return f"{100.0 * fraction:.4g}%"


def fmt_hours(h: float) -> str:
    """``6 h``."""
    return f"{h:g} h"


def json_num(x: float | None) -> float | str | None:
    """A float for JSON: NaN becomes ``None`` and infinities become ``"inf"``/``"-inf"``."""
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


def join(items: Sequence[object]) -> str:
    """``a, b, c``."""
    return ", ".join(str(i) for i in items)


def file_size(path: Path | str) -> int:
    """Bytes of a file, or of every file under a directory (a Zarr store); 0 otherwise."""
    if isinstance(path, str):  # an object-store URI
        from aurora_mlops.data._remote import remote_size

        return remote_size(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def expected_dims(spec: VariableSpec) -> tuple[str, ...]:
    """The canonical dimensions of a variable of ``spec``'s kind."""
    return {"surf": SURF_DIMS, "atmos": ATMOS_DIMS, "static": STATIC_DIMS}[spec.kind]


@dataclass
class Checks:
    """The dataset under check, the problems found so far and the audit being built.

    Attributes:
        ds: The dataset, opened lazily.
        path: Where it was read from (every problem starts with it).
        spec: The variant it must serve.
        max_nan_fraction: Largest tolerated NaN fraction per time-dependent variable.
        chunk_bytes: About how many bytes one read may hold.
        problems: One sentence per problem.
        times: The time coordinate (``datetime64[ns]``) when it is usable.
        time_audit: Time range, count, step and gaps.
        grid_audit: Latitude/longitude points, ranges and steps.
        levels: Pressure levels found (hPa).
        present: Required variables with a sound structure: the ones whose values are read.
        var_audit: Per variable: units, dims, shape, dtype, coverage and value statistics.
        bytes_read: Bytes of values read so far.
    """

    ds: xr.Dataset
    path: Path | str
    spec: VariantSpec
    max_nan_fraction: float
    chunk_bytes: int
    problems: list[str] = field(default_factory=list)
    times: np.ndarray | None = None
    time_audit: dict[str, Any] = field(default_factory=dict)
    grid_audit: dict[str, Any] = field(default_factory=dict)
    levels: list[int] = field(default_factory=list)
    present: list[VariableSpec] = field(default_factory=list)
    var_audit: dict[str, dict[str, Any]] = field(default_factory=dict)
    bytes_read: int = 0

    def problem(self, text: str) -> None:
        """Record one problem (``text`` without the file name, which is prefixed here)."""
        self.problems.append(f"{self.path}: {text}")

    def where(self, v: VariableSpec, index: tuple[int, ...]) -> str:
        """``time index 3 (2024-01-01T18:00), level 500, lat 45, lon 90`` for a full index."""
        parts: list[str] = []
        for dim, i in zip(expected_dims(v), index, strict=True):
            if dim == "time":
                ts = f" ({fmt_time(self.times[i])})" if self.times is not None else ""
                parts.append(f"time index {i}{ts}")
            else:
                coord = self.ds[dim].values[i] if dim in self.ds.coords else i
                parts.append(f"{dim} {fmt_num(float(coord))}")
        return ", ".join(parts)
