"""Forecast requests, validated at the edge before any model work.

Two forms reach :meth:`AuroraForecaster.predict`:

* **arrays**: ``{"init_time": "2024-01-29T18:00", "2t": [...], "z": [...], ...}``: the initial
  state of every surface and atmospheric variable, ``(history, lat, lon)`` or
  ``(history, level, lat, lon)`` each, optionally with a leading batch axis; ``init_time`` is the
  time of the newest history step (one string, or one per batch member). ``lat``, ``lon`` and
  ``level`` may be given and must then equal the model's.
* **references**: ``{"input_uri": "ic.nc", "output_uri": "forecast.zarr"}`` (optionally
  ``init_time``, default the last time in the input): for grids too large for a JSON body.

``steps``, ``precision`` (``fp32`` or ``bf16``) and ``members`` (a top-k ensemble's members
beside their mean, ``<name>_members`` arrays) are inference parameters
(``params={"steps": 4, "precision": "bf16", "members": true}``). MLflow hands the request over as
a ``dict`` (in-process or the ``inputs`` form) or a ``pandas.DataFrame`` (the ``dataframe_*``
forms, one row per initial state); both are accepted. Every problem raises
:class:`RequestError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.packaging._contract import PRECISIONS, ModelContract, Precision

__all__ = [
    "MEMBERS_SUFFIX",
    "ArrayRequest",
    "ReferenceRequest",
    "RequestError",
    "parse_members",
    "parse_precision",
    "parse_request",
    "parse_steps",
]

_REFERENCE_KEYS = ("input_uri", "output_uri")
_GRID_KEYS = ("lat", "lon", "level")
#: Keys a request may carry besides the variables: routers add ``request_id``.
_META_KEYS = ("init_time", "request_id")


class RequestError(AuroraMLOpsError, ValueError):
    """A forecast request is malformed (the scoring server answers it with HTTP 400)."""


@dataclass(frozen=True)
class ArrayRequest:
    """Initial states given in the request.

    Attributes:
        states: ``{name: float32 array}``, surface ``(b, history, lat, lon)``, atmospheric
            ``(b, history, level, lat, lon)``.
        init_times: The newest history step of each of the ``b`` states.
        steps: Rollout steps.
    """

    states: dict[str, np.ndarray]
    init_times: tuple[datetime, ...]
    steps: int


@dataclass(frozen=True)
class ReferenceRequest:
    """An initial condition in a file and where the forecast goes.

    Attributes:
        input_uri: netCDF file or Zarr store in any layout the readers accept.
        output_uri: Where the forecast is written (``.zarr`` for Zarr, else netCDF).
        init_time: The newest history step to start from (``None``: the input's last time).
        steps: Rollout steps.
    """

    input_uri: str
    output_uri: str
    init_time: datetime | None
    steps: int


def parse_steps(params: Mapping[str, Any] | None, contract: ModelContract) -> int:
    """The ``steps`` inference parameter, checked against the contract's limit."""
    raw = (params or {}).get("steps", contract.default_steps)
    try:
        steps = int(raw)
        if steps != float(raw):
            raise ValueError
    except (TypeError, ValueError):
        raise RequestError(f"params.steps must be an integer, got {raw!r}") from None
    if not 1 <= steps <= contract.max_steps:
        raise RequestError(
            f"params.steps must be between 1 and {contract.max_steps} "
            f"({contract.max_steps * contract.timestep_hours} h), got {steps}"
        )
    return steps


def parse_precision(params: Mapping[str, Any] | None, contract: ModelContract) -> Precision:
    """The ``precision`` inference parameter (``fp32`` or ``bf16``), the package's by default."""
    raw = (params or {}).get("precision", contract.precision)
    for choice in PRECISIONS:
        if raw == choice:
            return choice
    raise RequestError(f"params.precision must be one of {list(PRECISIONS)}, got {raw!r}")


#: Suffix of the answer's per-member arrays, ``(b, members, steps, ...)``, when asked for.
MEMBERS_SUFFIX = "_members"


def parse_members(params: Mapping[str, Any] | None, count: int) -> bool:
    """The ``members`` inference parameter: whether the answer carries every member's forecast
    beside the mean (``false`` by default; ``count`` members in the package)."""
    raw = (params or {}).get("members", False)
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        raw = raw.lower() == "true"
    if not isinstance(raw, bool | np.bool_):
        raise RequestError(f"params.members must be true or false, got {raw!r}")
    if raw and count < 1:
        raise RequestError("params.members: the model has no members")
    return bool(raw)


def _columns(model_input: Any) -> dict[str, list[Any]]:
    """The request as ``{field: [value per batch member or one value]}``."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        return {str(c): list(model_input[c]) for c in model_input.columns}
    if isinstance(model_input, list) and all(isinstance(r, Mapping) for r in model_input):
        keys = {k for r in model_input for k in r}
        return {str(k): [r.get(k) for r in model_input] for k in sorted(keys)}
    if isinstance(model_input, Mapping):
        return {str(k): [v] for k, v in model_input.items()}
    raise RequestError(
        f"a request must be a JSON object of fields, got {type(model_input).__name__}"
    )


def _text(name: str, values: list[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        arr = np.asarray(v)
        items = arr.ravel().tolist() if arr.ndim else [arr.item()]
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise RequestError(f"{name} must be a non-empty string, got {item!r}")
            out.append(item.strip())
    return out


def _time(name: str, text: str) -> datetime:
    try:
        stamp = np.datetime64(text.replace("Z", ""), "s")
    except ValueError:
        raise RequestError(
            f"{name} must be an ISO 8601 time such as 2024-01-29T18:00, got {text!r}"
        ) from None
    if np.isnat(stamp):
        raise RequestError(f"{name} must be a time, got {text!r}")
    return datetime.fromisoformat(str(stamp))


def _state(name: str, values: list[Any], contract: ModelContract) -> np.ndarray:
    """One variable's states as ``(b, *state_shape)`` float32, shape and finiteness checked."""
    want = contract.state_shape(name)
    try:
        arrays = [np.asarray(v, dtype=np.float32) for v in values]
    except (TypeError, ValueError) as e:
        raise RequestError(f"{name} must be an array of numbers ({e})") from None
    if len(arrays) == 1 and arrays[0].ndim == len(want) + 1:
        arr = arrays[0]
    else:
        if any(a.shape != arrays[0].shape for a in arrays):
            raise RequestError(f"{name}: the batch members have different shapes")
        arr = np.stack(arrays)
    if arr.shape[1:] != want:
        dims = "(history, level, lat, lon)" if name in contract.atmos_vars else \
            "(history, lat, lon)"
        raise RequestError(
            f"{name} has shape {list(arr.shape[1:])} per state, the model needs {list(want)} "
            f"{dims} (history {contract.history}, grid {contract.grid[0]}x{contract.grid[1]}"
            + (f", levels {list(contract.levels)})" if name in contract.atmos_vars else ")")
        )
    bad = ~np.isfinite(arr) if name not in contract.nan_allowed else np.isinf(arr)
    if bad.any():
        raise RequestError(
            f"{name} has {int(bad.sum())} non-finite value(s) (first at index "
            f"{list(np.argwhere(bad)[0])}); the model needs finite inputs"
        )
    return arr


def _check_grid(cols: dict[str, list[Any]], grid: Mapping[str, np.ndarray]) -> None:
    for key in _GRID_KEYS:
        if key not in cols:
            continue
        got = np.asarray(cols[key][0], dtype=np.float64).ravel()
        want = np.asarray(grid[key], dtype=np.float64).ravel()
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-4):
            raise RequestError(
                f"{key} does not match the model's grid: it needs {want.size} values from "
                f"{want[0]:g} to {want[-1]:g}, got {got.size} values"
                + (f" from {got[0]:g} to {got[-1]:g}" if got.size else "")
            )


def parse_request(
    model_input: Any,
    params: Mapping[str, Any] | None,
    contract: ModelContract,
    grid: Mapping[str, np.ndarray],
) -> ArrayRequest | ReferenceRequest:
    """Validate a request against ``contract`` and the model's ``grid`` (``lat``, ``lon``,
    ``level`` arrays).

    Raises:
        RequestError: Missing or extra fields, wrong shapes, another grid or levels,
            non-finite values, a bad time, or ``steps`` out of range; the message names the
            field.
    """
    steps = parse_steps(params, contract)
    cols = _columns(model_input)
    if any(k in cols for k in _REFERENCE_KEYS):
        return _reference_request(cols, steps)
    return _array_request(cols, steps, contract, grid)


def _reference_request(cols: dict[str, list[Any]], steps: int) -> ReferenceRequest:
    extra = sorted(set(cols) - {*_REFERENCE_KEYS, *_META_KEYS})
    if extra:
        raise RequestError(
            f"unexpected field(s) {extra} in a reference request: give input_uri, "
            "output_uri and optionally init_time"
        )
    missing = [k for k in _REFERENCE_KEYS if k not in cols]
    if missing:
        raise RequestError(f"a reference request needs {missing[0]} as well")
    uris = {k: _text(k, cols[k]) for k in _REFERENCE_KEYS}
    if len(uris["input_uri"]) != 1 or len(uris["output_uri"]) != 1:
        raise RequestError("a reference request names one input_uri and one output_uri")
    init = _text("init_time", cols["init_time"])[0] if "init_time" in cols else None
    return ReferenceRequest(
        input_uri=uris["input_uri"][0], output_uri=uris["output_uri"][0],
        init_time=_time("init_time", init) if init else None, steps=steps,
    )


def _array_request(cols: dict[str, list[Any]], steps: int, contract: ModelContract,
                   grid: Mapping[str, np.ndarray]) -> ArrayRequest:
    allowed = {*contract.state_vars, *_GRID_KEYS, *_META_KEYS}
    extra = sorted(set(cols) - allowed)
    if extra:
        statics = [e for e in extra if e in contract.static_vars]
        hint = f" (static fields {statics} ship with the model)" if statics else ""
        raise RequestError(
            f"unexpected variable(s) {extra}{hint}: the model takes "
            f"{list(contract.state_vars)}, init_time, and optionally lat, lon, level"
        )
    missing = [n for n in contract.state_vars if n not in cols]
    if missing:
        raise RequestError(
            f"missing variable(s) {missing}: give the initial state of every variable, or "
            "input_uri and output_uri"
        )
    if "init_time" not in cols:
        raise RequestError("missing init_time: the time of the newest history step (ISO 8601)")
    _check_grid(cols, grid)
    states = {n: _state(n, cols[n], contract) for n in contract.state_vars}
    sizes = {len(a) for a in states.values()}
    if len(sizes) != 1:
        raise RequestError(f"the variables have different batch sizes {sorted(sizes)}")
    (size,) = sizes
    times = [_time("init_time", t) for t in _text("init_time", cols["init_time"])]
    if len(times) == 1:
        times = times * size
    if len(times) != size:
        raise RequestError(f"init_time has {len(times)} values for {size} initial states")
    return ArrayRequest(states=states, init_times=tuple(times), steps=steps)
