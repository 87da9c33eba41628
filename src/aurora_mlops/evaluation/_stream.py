"""Forecasts streamed to a Zarr store one batch of initialisation times at a time.

``evaluate --model`` rolls a model out over a whole test split. Holding that forecast in memory
grows with the length of the split (a year of 6-hourly 0.25 degree forecasts with four leads is
terabytes), so each batch of initialisation times is appended to a Zarr store in the
WeatherBench2 layout as soon as it is rolled out, and the scorer then reads the store back one
chunk of initialisation times at a time. Memory is one batch, whatever the split's length.

The store is written under a temporary sibling name and renamed into place when the last batch
is in, so a crash never leaves a store that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import xarray as xr

from aurora_mlops._progress import progress_bar
from aurora_mlops.errors import DataFileError

__all__ = ["ForecastStore", "progress"]

#: How initialisation times are encoded in the store: exact for any whole-second time, and the
#: same for every appended batch (xarray would otherwise pick units from the first batch).
_TIME_ENCODING = {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"}


class ForecastStore:
    """A Zarr store that forecast batches are appended to along ``time``.

    Use as a context manager: the store appears at ``path`` only when the block ends without an
    exception; otherwise the partial store is removed.

    Each variable is chunked as one initialisation time x one lead x the whole (level,) lat,
    lon field, so that appending a batch writes whole chunks and the scorer reads only the
    initialisation times it asks for.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
        self.times = 0

    def __enter__(self) -> ForecastStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None or self.times == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.path.is_dir():
            shutil.rmtree(self.path)
        elif self.path.exists():
            self.path.unlink()
        os.replace(self.tmp, self.path)

    def append(self, part: xr.Dataset) -> None:
        """Write the initialisation times of ``part`` after those already written."""
        try:
            if self.times == 0:
                encoding: dict[str, dict[str, object]] = {
                    str(name): {"chunks": _chunks(part[name])} for name in part.data_vars
                }
                encoding["time"] = dict(_TIME_ENCODING)
                part.to_zarr(self.tmp, mode="w", encoding=encoding, consolidated=True,
                             zarr_format=2)
            else:
                part.to_zarr(self.tmp, append_dim="time", consolidated=True)
        except OSError as e:
            raise DataFileError(
                f"{self.path}: writing the forecast store failed ({e}); free space or choose "
                "another output directory"
            ) from e
        self.times += int(part.sizes["time"])


def _chunks(da: xr.DataArray) -> tuple[int, ...]:
    return tuple(1 if d in ("time", "prediction_timedelta") else int(n)
                 for d, n in zip(da.dims, da.shape, strict=True))


@contextlib.contextmanager
def progress(total: int, label: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A ``rich`` progress bar on stderr for ``total`` initialisation times.

    Yields ``advance(n)``, to call after each batch of ``n`` initialisation times.
    """
    bar = progress_bar(unit="initialisations", enabled=enabled)
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
