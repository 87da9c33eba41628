"""Writing datasets: netCDF-4 or Zarr, atomically (a temporary sibling renamed into place)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import xarray as xr

from aurora_mlops.errors import DataFileError

__all__ = ["write_dataset"]

logger = logging.getLogger(__name__)


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``.nc`` (netCDF-4) or ``.zarr`` atomically.

    The data goes to a temporary sibling in the same directory first and is then renamed onto
    ``path``, so a crash never leaves a half-written file that looks complete. Parent
    directories are created; an existing file or store at ``path`` is replaced.

    Args:
        ds: The dataset to write (lazy variables are read as they are written).
        path: Destination ending in ``.nc`` or ``.zarr``.

    Returns:
        The final path.

    Raises:
        DataFileError: The suffix is not ``.nc``/``.zarr`` or the write failed.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise DataFileError(
            f"{p}: unknown output suffix {p.suffix!r}; name the output *.nc (netCDF-4) or "
            "*.zarr (Zarr store)."
        )
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataFileError(f"{p}: cannot create the directory {p.parent} ({e}); choose a "
                            "writable output location.") from e
    tmp = p.parent / f".{p.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if suffix == ".nc":
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
            os.replace(tmp, p)
        else:
            ds.to_zarr(tmp, mode="w", consolidated=False)
            _replace_dir(tmp, p)
    except Exception as e:
        _remove(tmp)
        if isinstance(e, DataFileError):
            raise
        raise DataFileError(
            f"{p}: writing the dataset failed ({type(e).__name__}: {e}); nothing was left "
            "behind, fix the cause and write again."
        ) from e
    logger.info("wrote %s", p)
    return p

def _replace_dir(tmp: Path, p: Path) -> None:
    """Move the finished store ``tmp`` onto ``p``, replacing an old store if there is one."""
    if not p.exists():
        os.replace(tmp, p)
        return
    if p.is_file():
        p.unlink()
        os.replace(tmp, p)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{p.name}.old-", dir=p.parent))
    old.rmdir()
    os.replace(p, old)
    os.replace(tmp, p)
    shutil.rmtree(old, ignore_errors=True)

def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)
