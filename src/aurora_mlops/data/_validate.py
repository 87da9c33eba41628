"""``aurora-mlops data validate``: check a dataset against a variant's needs, with an audit.

Validation runs in two phases:

1. **Structure** (cheap, metadata only): required variables and static fields present, their
   dimensions, dtype and ``units``; pressure levels among :data:`STANDARD_LEVELS`; time strictly
   increasing, regular, at the variant's step and long enough for ``min_history + 1`` steps;
   a regular latitude/longitude grid. Any problem here stops validation before a single value is
   read (fail fast: values in the wrong units or on the wrong axes would only add noise).
2. **Values** (streamed): every required variable is read once, in time chunks of about
   ``chunk_bytes``, accumulating counts, NaNs, min/mean/max and out-of-range values against the
   vocabulary's physical ranges. Wave periods are read in the same chunk loop as their wave
   height, to check that a period is positive wherever the height is. Memory stays bounded by a
   few chunks, whatever the size of the file.

The result is a :class:`ValidationReport`; with ``report_dir`` it is also written atomically as
``validation.json`` and ``validation.md``, valid or not.

The phases live in :mod:`._validate_structure` and :mod:`._validate_values`, the files in
:mod:`._validate_report`; this module opens the dataset, runs them and assembles the audit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_mlops.data._validate_report import write_reports
from aurora_mlops.data._validate_state import Checks, file_size
from aurora_mlops.data._validate_structure import check_structure
from aurora_mlops.data._validate_values import WAVE_PERIOD_PAIRS, check_values
from aurora_mlops.errors import AuroraMLOpsError, DataFileError, ValidationFailed
from aurora_mlops.variants import VariantSpec, get_variant

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["WAVE_PERIOD_PAIRS", "ValidationReport", "validate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on one dataset for one variant.

    Attributes:
        ok: ``True`` when no problem was found.
        problems: One sentence per problem: the file, the variable, what is wrong, where (time
            index and timestamp, level, lat/lon) and what to do.
        audit: JSON-serialisable audit: a dataset summary (grid, levels, time range and gaps,
            file size) and, per variable, coverage, NaN and outlier counts, min/mean/max, units.
        report_files: The ``validation.json`` and ``validation.md`` written (empty without
            ``report_dir``).
    """

    ok: bool
    problems: list[str]
    audit: dict[str, Any]
    report_files: list[Path] = field(default_factory=list)

    def raise_if_invalid(self) -> None:
        """Raise :class:`ValidationFailed` (carrying :attr:`problems`) unless :attr:`ok`."""
        if not self.ok:
            raise ValidationFailed(self.problems)


def _open(path: Path | str) -> xr.Dataset:
    from aurora_mlops.data._open import open_dataset

    try:
        return open_dataset(path)
    except AuroraMLOpsError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise DataFileError(
            f"{path}: cannot be read as a dataset ({type(e).__name__}: {e}); check that it is a "
            "netCDF file, Zarr store or GRIB file."
        ) from e


def validate(
    path: str | Path,
    variant: str | VariantSpec,
    *,
    report_dir: str | Path | None = None,
    max_nan_fraction: float = 0.0,
    chunk_bytes: int = 64 * 2**20,
) -> ValidationReport:
    """Validate a dataset for a variant, streaming its values with bounded memory.

    Args:
        path: A netCDF file, Zarr store or GRIB file; read through
            :func:`aurora_mlops.data.open_dataset`, which maps foreign layouts onto the
            canonical one.
        variant: The variant (or its registry name) whose variables, levels, timestep and
            ``min_history`` the dataset must serve.
        report_dir: Where to write ``validation.json`` and ``validation.md`` (created if
            needed); nothing is written when ``None``.
        max_nan_fraction: Largest tolerated fraction of NaN values per time-dependent variable,
            in ``[0, 1]``. Static fields must never contain NaN.
        chunk_bytes: About how many bytes to hold in memory per read (per wave height and its
            periods together); at least one time step is always read at once.

    Returns:
        The :class:`ValidationReport`; ``ok`` is ``False`` when any problem was found.

    Raises:
        DataFileError: The file is missing, empty, truncated or unreadable, or the report cannot
            be written.
        ConfigError: Unknown variant name, or ``max_nan_fraction``/``chunk_bytes`` out of range.
    """
    from aurora_mlops.errors import ConfigError

    spec = get_variant(variant) if isinstance(variant, str) else variant
    if not 0.0 <= max_nan_fraction <= 1.0:
        raise ConfigError(f"max_nan_fraction must lie in [0, 1], got {max_nan_fraction}")
    if chunk_bytes < 1:
        raise ConfigError(f"chunk_bytes must be positive, got {chunk_bytes}")
    from aurora_mlops.data._remote import is_remote

    path = path if is_remote(path) else Path(path)  # an object-store URI stays a string
    started = time.perf_counter()
    ds = _open(path)
    try:
        c = Checks(ds, path, spec, max_nan_fraction=max_nan_fraction, chunk_bytes=chunk_bytes)
        check_structure(c)
        values_checked = not c.problems
        if values_checked:
            check_values(c)
        else:
            log.info("%s: structural problems found; values were not read", path)
    finally:
        ds.close()
    elapsed = time.perf_counter() - started
    audit = _audit(c, values_checked, elapsed)
    files = [] if report_dir is None else write_reports(Path(report_dir), audit)
    log.info("%s: %s in %.2f s", path, "valid" if audit["ok"] else "INVALID", elapsed)
    return ValidationReport(ok=audit["ok"], problems=list(c.problems), audit=audit,
                            report_files=files)


def _audit(c: Checks, values_checked: bool, elapsed: float) -> dict[str, Any]:
    """The JSON-serialisable audit of a finished validation."""
    names = sorted(map(str, c.ds.data_vars))
    return {
        "file": str(c.path),
        "variant": c.spec.name,
        "ok": not c.problems,
        "problems": list(c.problems),
        "values_checked": values_checked,
        "max_nan_fraction": c.max_nan_fraction,
        "dataset": {
            "file_size_bytes": file_size(c.path),
            "grid": c.grid_audit,
            "levels": c.levels,
            "time": c.time_audit,
            "variables": names,
            "extra_variables": sorted(set(names) - {x.store_name for x in c.spec.variables()}),
        },
        "variables": c.var_audit,
        "bytes_read": c.bytes_read,
        "elapsed_s": round(elapsed, 3),
    }
