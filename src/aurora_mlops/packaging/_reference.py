"""The references request form: read an initial condition from a netCDF file or Zarr store.

The file may be in any layout the readers accept (canonical, CDS ERA5, WeatherBench2); the
history steps ending at ``init_time`` are taken out and then checked exactly like an arrays
request, so both forms meet the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.packaging._contract import ModelContract
from aurora_mlops.packaging._requests import (
    ArrayRequest,
    ReferenceRequest,
    RequestError,
    parse_request,
)

__all__ = ["read_initial_state"]


def _index_of(times: np.ndarray, init: datetime | None, uri: str) -> int:
    if init is None:
        return len(times) - 1
    hits = np.flatnonzero(times == np.datetime64(init, "ns"))
    if not hits.size:
        raise RequestError(
            f"init_time {init.isoformat()} is not a time of {uri} (it has {len(times)} times "
            f"from {str(times[0])[:16]} to {str(times[-1])[:16]})"
        )
    return int(hits[0])


def read_initial_state(
    request: ReferenceRequest, contract: ModelContract, grid: Mapping[str, np.ndarray]
) -> ArrayRequest:
    """The ``history`` steps of ``request.input_uri`` ending at its ``init_time``.

    Raises:
        RequestError: The file is unreadable, lacks a variable, level or time, the history
            steps are not one model step apart, or the grid differs from the model's.
    """
    from aurora_mlops.data import open_dataset

    uri = request.input_uri
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    try:
        ds = open_dataset(path)
    except AuroraMLOpsError as e:
        raise RequestError(f"input_uri: {e}") from e
    try:
        times = np.asarray(ds["time"].values, dtype="datetime64[ns]")
        i = _index_of(times, request.init_time, uri)
        first = i - contract.history + 1
        if first < 0:
            raise RequestError(
                f"input_uri {uri} has {i + 1} time(s) up to {str(times[i])[:16]}; the model "
                f"needs {contract.history} history steps"
            )
        window = times[first : i + 1]
        step = np.timedelta64(contract.timestep_hours, "h")
        if (np.diff(window) != step).any():
            raise RequestError(
                f"input_uri {uri}: the history steps {[str(t)[:16] for t in window]} are not "
                f"{contract.timestep_hours} h apart"
            )
        part = ds.isel(time=slice(first, i + 1))
        if contract.atmos_vars:
            have = [int(x) for x in ds["level"].values] if "level" in ds.coords else []
            missing = [lv for lv in contract.levels if lv not in have]
            if missing:
                raise RequestError(f"input_uri {uri} has no pressure level(s) {missing}")
            part = part.sel(level=list(contract.levels))
        fields: dict[str, object] = {
            "init_time": str(times[i])[:19],
            "lat": np.asarray(ds["lat"].values),
            "lon": np.asarray(ds["lon"].values),
        }
        for name in contract.state_vars:
            if name not in part:
                raise RequestError(f"input_uri {uri} has no variable {name!r}")
            dims = ("time", "level", "lat", "lon") if name in contract.atmos_vars else \
                ("time", "lat", "lon")
            fields[name] = np.asarray(part[name].transpose(*dims).values, dtype=np.float32)
    finally:
        ds.close()
    state = parse_request(fields, {"steps": request.steps}, contract, grid)
    assert isinstance(state, ArrayRequest)
    return state
