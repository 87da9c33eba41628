"""Roll a trained model out over a dataset's test split into a WeatherBench2-style forecast.

``evaluate --model CKPT --data PATH`` turns the checkpoint into a forecast with
:func:`forecast_from_checkpoint` and then scores it with exactly the code that scores forecast
files, so a model, its baselines and any other forecast are judged identically.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aurora_mlops.errors import DataError

__all__ = [
    "DEFAULT_LEAD_STEPS",
    "forecast_from_checkpoint",
    "rollout_forecast",
    "untuned_forecast",
]

log = logging.getLogger(__name__)

#: Lead times a model is rolled out to by default (4 steps: 24 h at 6 h, 48 h at 12 h).
DEFAULT_LEAD_STEPS = 4


def _progress_printer(total: int, label: str) -> Callable[[int], None]:
    stream = sys.stderr

    def show(done: int) -> None:
        if stream.isatty() or done == total:
            stream.write(f"\r{label}: {done}/{total} initialisations")
            if done == total:
                stream.write("\n")
            stream.flush()

    return show


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
        progress: Print progress on stderr.

    Returns:
        Dataset with dims ``time`` (initialisation, the newest history step),
        ``prediction_timedelta``, ``level`` (if any), ``lat``, ``lon``; Aurora's variable names.

    Raises:
        DataError: The split is too short for the history and lead times.
    """
    import torch
    from aurora.rollout import rollout

    from aurora_mlops.data import WindowDataset, split_times
    from aurora_mlops.variants import get_variant

    spec = get_variant(variant)
    splits = split_times(int(ds.sizes["time"]))
    bounds = getattr(splits, split)
    windows = WindowDataset(
        ds, spec, bounds, history=history, rollout_steps=lead_steps,
        levels=list(levels) if levels else None,
    )
    if static_extra:
        windows.static.update(static_extra)
    items = list(range(len(windows)))
    if max_inits is not None and max_inits < len(items):
        picks = np.linspace(0, len(items) - 1, max_inits).round().astype(int)
        items = sorted({int(i) for i in picks})
    show = _progress_printer(len(items), f"rolling out {variant}") if progress else None
    surf: dict[str, list[np.ndarray]] = {n: [] for n in spec.surf_vars}
    atmos: dict[str, list[np.ndarray]] = {n: [] for n in spec.atmos_vars}
    lat = lon = None
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            batch, _ = windows.batch(chunk)
            preds = list(rollout(model, batch, lead_steps))
            lat = preds[0].metadata.lat.numpy()
            lon = preds[0].metadata.lon.numpy()
            for name in surf:
                steps = [p.surf_vars[name][:, 0].float().numpy() for p in preds]
                surf[name].append(np.stack(steps, axis=1))
            for name in atmos:
                steps = [p.atmos_vars[name][:, 0].float().numpy() for p in preds]
                atmos[name].append(np.stack(steps, axis=1))
            if show is not None:
                show(min(start + batch_size, len(items)))
    if lat is None or lon is None:
        raise DataError(f"the {split} split has no initialisation time to forecast from")
    inits = [ds["time"].values[windows.init_index(i)] for i in items]
    step = np.timedelta64(spec.timestep_hours, "h").astype("timedelta64[ns]")
    leads = np.array([step * (k + 1) for k in range(lead_steps)])
    coords: dict[str, Any] = {
        "time": np.asarray(inits, dtype="datetime64[ns]"),
        "prediction_timedelta": leads,
        "lat": lat,
        "lon": lon,
    }
    data_vars: dict[str, Any] = {}
    for name, parts in surf.items():
        data_vars[name] = (("time", "prediction_timedelta", "lat", "lon"), np.concatenate(parts))
    if atmos:
        coords["level"] = np.asarray(windows.levels, dtype=np.int64)
        for name, parts in atmos.items():
            data_vars[name] = (
                ("time", "prediction_timedelta", "level", "lat", "lon"),
                np.concatenate(parts),
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
) -> xr.Dataset:
    """Load a ``train-trial`` checkpoint (or take a loaded ``TrainedModel``) and roll it out
    over ``data`` (see :func:`rollout_forecast`); the forecast's attributes name the checkpoint."""
    trained = _trained(model_path, variant)
    ds = _dataset(data)
    extra = None
    if trained.params.coastal_conditioning:
        import torch

        from aurora_mlops.training._trainer import COAST_VAR, coast_mask
        from aurora_mlops.variables import static_store_name

        lsm = torch.as_tensor(np.asarray(ds[static_store_name("lsm")].values, dtype=np.float32))
        extra = {COAST_VAR: coast_mask(lsm)}
    fc = rollout_forecast(
        trained.model, ds, variant, history=trained.history, levels=trained.levels or None,
        split=split, lead_steps=lead_steps, batch_size=batch_size, max_inits=max_inits,
        static_extra=extra, progress=progress,
    )
    fc.attrs["checkpoint"] = str(trained.checkpoint)
    fc.attrs["checkpoint_sha256"] = str(trained.trial.get("checkpoint", {}).get("sha256", ""))
    return fc


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
        batch_size=batch_size, max_inits=max_inits, progress=progress,
    )
    fc.attrs["checkpoint"] = str(source)
    return fc
