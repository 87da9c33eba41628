"""Roll a trained model out over a dataset's test split into a WeatherBench2-style forecast.

``evaluate --model CKPT --data PATH`` turns the checkpoint into a forecast with
:func:`forecast_from_checkpoint` and then scores it with exactly the code that scores forecast
files, so a model, its baselines and any other forecast are judged identically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aurora_mlops.errors import DataError

__all__ = [
    "DEFAULT_LEAD_STEPS",
    "extra_statics",
    "forecast_dataset",
    "forecast_from_checkpoint",
    "rollout_arrays",
    "rollout_forecast",
    "untuned_forecast",
]

log = logging.getLogger(__name__)

#: Lead times a model is rolled out to by default (4 steps: 24 h at 6 h, 48 h at 12 h).
DEFAULT_LEAD_STEPS = 4


def rollout_forecast(
    model: Any,
    ds: xr.Dataset,
    variant: str,
    *,
    history: int,
    levels: tuple[int, ...] | None = None,
    split: str = "test",
    lead_steps: int = DEFAULT_LEAD_STEPS,
    batch_size: int = 4,
    max_inits: int | None = None,
    static_extra: dict[str, Any] | None = None,
    progress: bool = True,
    store: str | Path | None = None,
) -> xr.Dataset:
    """Forecasts of ``model`` from every initialisation time of one split of ``ds``.

    Args:
        model: An Aurora model (eval mode) for ``variant``.
        ds: Canonical dataset (see :func:`aurora_mlops.data.open_dataset`).
        variant: Variant name.
        history: Input steps per window.
        levels: Pressure levels the model was trained on (default: all in ``ds``).
        split: ``train``, ``val`` or ``test`` (see :func:`aurora_mlops.data.split_times`).
        lead_steps: Rollout steps; lead ``k`` is ``k`` model timesteps after initialisation.
        batch_size: Initialisations rolled out together.
        max_inits: At most this many initialisations, evenly spaced over the split.
        static_extra: Extra static fields (e.g. the coastal mask of a coastal-conditioned model).
        progress: Show a progress bar on stderr.
        store: Zarr store to stream the forecast into, one batch at a time (memory flat in the
            length of the split; large arrays are then mapped apart from the heap for the rest
            of the process and freed pages are handed back after each batch, see
            :mod:`._memory`); the result is then read lazily from it. ``None``: in memory.

    Returns:
        Dataset with dims ``time`` (initialisation, the newest history step),
        ``prediction_timedelta``, ``level`` (if any), ``lat``, ``lon``; Aurora's variable names.

    Raises:
        DataError: The split is too short for the history and lead times.
    """
    from aurora_mlops.evaluation._forecast import open_forecast
    from aurora_mlops.evaluation._stream import progress as progress_bar
    from aurora_mlops.variants import get_variant

    spec = get_variant(variant)
    windows, items = _split_windows(ds, spec, split, history, lead_steps, levels, max_inits)
    if static_extra:
        windows.static.update(static_extra)
    parts = _forecast_batches(model, windows, spec, items, ds["time"].values, lead_steps,
                              batch_size)
    with progress_bar(len(items), f"rolling out {variant}", enabled=progress) as advance:
        if store is None:
            kept = []
            for part in parts:
                kept.append(part)
                advance(part.sizes["time"])
            return xr.concat(kept, dim="time") if len(kept) > 1 else kept[0]
        _stream(parts, Path(store), advance)
    return open_forecast(store)


def _stream(parts: Iterator[xr.Dataset], store: Path, advance: Callable[[int], None]) -> None:
    """Append each batch of forecasts to the Zarr ``store`` as it comes, holding one batch."""
    from aurora_mlops.evaluation._memory import map_large_arrays, release_freed_memory
    from aurora_mlops.evaluation._stream import ForecastStore

    map_large_arrays()
    with ForecastStore(store) as out:
        for part in parts:
            out.append(part)
            advance(part.sizes["time"])
            del part  # one batch in memory at a time
            release_freed_memory()


def _split_windows(
    ds: xr.Dataset, spec: Any, split: str, history: int, lead_steps: int,
    levels: tuple[int, ...] | None, max_inits: int | None,
) -> tuple[Any, list[int]]:
    """The split's windows and the indices of those to forecast from (``max_inits`` of them,
    evenly spaced, when given)."""
    from aurora_mlops.data import WindowDataset, split_times

    bounds = getattr(split_times(int(ds.sizes["time"])), split)
    windows = WindowDataset(
        ds, spec, bounds, history=history, rollout_steps=lead_steps,
        levels=list(levels) if levels else None,
    )
    items = list(range(len(windows)))
    if max_inits is not None and max_inits < len(items):
        picks = np.linspace(0, len(items) - 1, max_inits).round().astype(int)
        items = sorted({int(i) for i in picks})
    if not items:
        raise DataError(f"the {split} split has no initialisation time to forecast from")
    return windows, items


def _forecast_batches(
    model: Any, windows: Any, spec: Any, items: list[int], times: np.ndarray,
    lead_steps: int, batch_size: int,
) -> Iterator[xr.Dataset]:
    """The forecasts from ``items``, ``batch_size`` initialisation times at a time."""
    lat, lon = windows.lat.numpy(), windows.lon.numpy()
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch, _ = windows.batch(chunk)
        inits = np.asarray([times[windows.init_index(i)] for i in chunk])
        arrays = rollout_arrays(model, batch, lead_steps)
        del batch
        yield forecast_dataset(arrays, spec, inits=inits, lat=lat, lon=lon,
                               levels=windows.levels)


def rollout_arrays(model: Any, batch: Any, steps: int) -> dict[str, np.ndarray]:
    """Roll ``model`` out ``steps`` steps from ``batch`` (no gradients).

    Returns:
        ``{name: array}`` for every variable the model predicts: surface ``(b, steps, h, w)``,
        atmospheric ``(b, steps, levels, h, w)``, ``float32``.
    """
    import torch
    from aurora.rollout import rollout

    with torch.no_grad():
        preds = list(rollout(model, batch, steps))
    out: dict[str, np.ndarray] = {}
    for group in ("surf_vars", "atmos_vars"):
        for name in getattr(preds[0], group):
            out[name] = np.stack(
                [getattr(p, group)[name][:, 0].float().cpu().numpy() for p in preds], axis=1
            )
    return out


def forecast_dataset(
    arrays: dict[str, np.ndarray],
    spec: Any,
    *,
    inits: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    levels: Sequence[int],
) -> xr.Dataset:
    """Forecast arrays (see :func:`rollout_arrays`) as a WeatherBench2-style dataset.

    Args:
        arrays: ``{name: array}``, surface ``(time, lead, lat, lon)``, atmospheric
            ``(time, lead, level, lat, lon)``; only the variant's variables are kept.
        spec: The :class:`~aurora_mlops.variants.VariantSpec` (variables, timestep).
        inits: Initialisation times (the newest history step of each forecast).
        lat: Latitudes (degrees north, descending).
        lon: Longitudes (degrees east, in [0, 360)).
        levels: Pressure levels (hPa) of the atmospheric arrays.

    Returns:
        Dataset with dims ``time``, ``prediction_timedelta``, ``level`` (if any), ``lat``,
        ``lon``: what ``evaluate --forecast`` scores.
    """
    first = next(iter(arrays.values()))
    n_leads = first.shape[1]
    # Aurora drops the last latitude row of a grid with one row more than its patches cover
    # (721 rows at 0.25 degrees): the forecast is on the rows it predicts.
    lat = np.asarray(lat)[: first.shape[-2]]
    step = np.timedelta64(spec.timestep_hours, "h").astype("timedelta64[ns]")
    coords: dict[str, Any] = {
        "time": np.asarray(inits, dtype="datetime64[ns]"),
        "prediction_timedelta": np.array([step * (k + 1) for k in range(n_leads)]),
        "lat": np.asarray(lat),
        "lon": np.asarray(lon),
    }
    data_vars: dict[str, Any] = {}
    for name in spec.surf_vars:
        data_vars[name] = (("time", "prediction_timedelta", "lat", "lon"), arrays[name])
    if spec.atmos_vars:
        coords["level"] = np.asarray(levels, dtype=np.int64)
        for name in spec.atmos_vars:
            data_vars[name] = (
                ("time", "prediction_timedelta", "level", "lat", "lon"), arrays[name]
            )
    out = xr.Dataset(data_vars, coords=coords)
    out.attrs["source"] = "aurora-mlops rollout"
    return out


def _trained(model: Any, variant: str) -> Any:
    """A :class:`~aurora_mlops.training.TrainedModel`, loaded unless it already is one."""
    from aurora_mlops.training import TrainedModel, load_trained

    return model if isinstance(model, TrainedModel) else load_trained(model, variant)


def _dataset(data: str | Path | xr.Dataset) -> xr.Dataset:
    from aurora_mlops.data import open_dataset

    return data if isinstance(data, xr.Dataset) else open_dataset(data)


def forecast_from_checkpoint(
    model_path: Any,
    data: str | Path | xr.Dataset,
    variant: str,
    *,
    split: str = "test",
    lead_steps: int = DEFAULT_LEAD_STEPS,
    batch_size: int = 4,
    max_inits: int | None = None,
    progress: bool = True,
    store: str | Path | None = None,
) -> xr.Dataset:
    """Load a ``train-trial`` checkpoint (or take a loaded ``TrainedModel``) and roll it out
    over ``data`` (see :func:`rollout_forecast`; ``store`` streams the forecast into a Zarr
    store); the forecast's attributes name the checkpoint."""
    from aurora_mlops.variables import static_store_name

    trained = _trained(model_path, variant)
    ds = _dataset(data)
    extra = None
    if trained.params.coastal_conditioning:
        extra = extra_statics(trained, np.asarray(ds[static_store_name("lsm")].values))
    fc = rollout_forecast(
        trained.model, ds, variant, history=trained.history, levels=trained.levels or None,
        split=split, lead_steps=lead_steps, batch_size=batch_size, max_inits=max_inits,
        static_extra=extra, progress=progress, store=store,
    )
    fc.attrs["checkpoint"] = str(trained.checkpoint)
    fc.attrs["checkpoint_sha256"] = str(trained.trial.get("checkpoint", {}).get("sha256", ""))
    return fc


def extra_statics(trained: Any, lsm: np.ndarray) -> dict[str, Any]:
    """Static inputs a trial added to its variant's own (the coastal mask of a
    coastal-conditioned ocean-waves model), computed from the land-sea mask ``lsm`` (h, w)."""
    import torch

    from aurora_mlops.training import COAST_VAR, coast_mask

    if not trained.params.coastal_conditioning:
        return {}
    return {COAST_VAR: coast_mask(torch.as_tensor(np.asarray(lsm, dtype=np.float32)))}


def untuned_forecast(
    model_path: Any,
    data: str | Path | xr.Dataset,
    variant: str,
    *,
    init: str | None = None,
    split: str = "test",
    lead_steps: int = DEFAULT_LEAD_STEPS,
    batch_size: int = 4,
    max_inits: int | None = None,
    progress: bool = True,
    store: str | Path | None = None,
) -> xr.Dataset | None:
    """The untuned variant's forecast: the trial's architecture with the weights it started
    from (``init``, or the trial's recorded ``--init``), rolled out like the tuned model.

    Returns ``None`` when there is nothing to start from (the trial trained from scratch and
    no ``init`` was given).
    """
    from aurora_mlops.training import build_trial_model
    from aurora_mlops.variants import load_weights

    trained = _trained(model_path, variant)
    source = init or trained.trial.get("init")
    if not source:
        return None
    model = build_trial_model(trained.variant, trained.params, trained.profile)
    load_weights(model, trained.variant, source, strict=not trained.params.coastal_conditioning)
    model.eval()
    fc = rollout_forecast(
        model, _dataset(data), variant, history=trained.history,
        levels=trained.levels or None, split=split, lead_steps=lead_steps,
        batch_size=batch_size, max_inits=max_inits, progress=progress, store=store,
    )
    fc.attrs["checkpoint"] = str(source)
    return fc
