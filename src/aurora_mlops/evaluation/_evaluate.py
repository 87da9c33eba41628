"""Scoring: stream forecasts and truth over initialisation times, accumulate, finalise.

The loop reads one chunk of initialisation times at a time (every forecast, the baselines built
from the truth, and the truth at the valid times ``init + lead`` of that chunk), computes the
per-time spatial statistics of :mod:`._metrics`, and adds them into running sums whose size
depends on variables, levels and leads only (:mod:`._accumulate`). Memory therefore does not
grow with the length of the test period. :mod:`._finalise` turns the sums into the table.

Order of means (WeatherBench2's): per initialisation time and lead the area-weighted spatial
statistic is computed; then the time mean is taken over initialisation times; RMSE and ensemble
spread are the square roots of the time-mean MSE and variance; ACC, Pearson, MAE, bias and CRPS
are plain time means of the per-time values.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import aurora_mlops.evaluation._metrics as M
from aurora_mlops.errors import DataError
from aurora_mlops.evaluation._accumulate import ChunkContext, ModelState, score_chunk
from aurora_mlops.evaluation._baselines import BASELINES, compute_climatology
from aurora_mlops.evaluation._events import EventSpec, events_for
from aurora_mlops.evaluation._finalise import finalise
from aurora_mlops.evaluation._forecast import INIT_DIM, LEAD_DIM, normalise_forecast, open_truth
from aurora_mlops.evaluation._gaps import check_scored, lead_text
from aurora_mlops.evaluation._grid import check_grid, fit_truth_rows
from aurora_mlops.evaluation._memory import map_large_arrays, release_freed_memory
from aurora_mlops.evaluation._result import TABLE_COLUMNS, EvaluationResult
from aurora_mlops.evaluation._seasonal import WINDOW_DAYS, seasonal_climatology
from aurora_mlops.variables import VARIABLES
from aurora_mlops.variants import get_variant

__all__ = ["TABLE_COLUMNS", "EvaluationResult", "score_forecasts"]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 2**20

_SHORT_CLIMATOLOGY = (
    f"The climatology period ({{period}}) leaves some valid days without a day within "
    f"{WINDOW_DAYS} days of their day of year, so ACC and the climatology baseline use an "
    "hour-of-day climatology: the seasonal cycle stays in the anomalies (ACC is optimistic over "
    "long periods)."
)


@dataclasses.dataclass(frozen=True)
class _Truth:
    """The truth and what the set-up found out about it."""

    ds: xr.Dataset
    variables: list[str]  # time-dependent variables
    wanted: list[str]  # the variant's time-dependent variables
    index: pd.Index
    step: np.timedelta64


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every chunk of the scoring loop shares, fixed before the first chunk is read."""

    truth: _Truth
    climatology: xr.Dataset  # on the truth's grid and the scored levels
    climatology_period: str  # where the climatology came from
    events: list[EventSpec]  # the variant's events whose inputs the truth has
    inits: np.ndarray  # every forecast's initialisation times, sorted
    leads: np.ndarray  # every forecast's lead times, sorted
    variables: list[str]  # every variable some forecast is scored on
    levels: np.ndarray | None  # every level some forecast is scored on; None: no levels
    chunk: int  # initialisation times read per step

    def baseline(self, kind: str) -> ModelState:
        """A baseline built from the truth, scored on everything some forecast is."""
        return ModelState(name=kind, kind=kind, variables=self.variables, leads=self.leads,
                          inits=self.inits, levels=self.levels)


def score_forecasts(
    forecasts: Mapping[str, xr.Dataset | str | Path],
    truth: xr.Dataset | str | Path,
    *,
    variant: str,
    climatology: xr.Dataset | None = None,
    baselines: Sequence[str] = BASELINES,
    chunk_inits: int | None = None,
    scratch_dir: str | Path | None = None,
) -> EvaluationResult:
    """Score forecasts (and baselines built from truth) against truth, streaming over inits.

    Args:
        forecasts: ``{name: forecast}``; a forecast is a WeatherBench2-style Dataset or a path
            to one (see :mod:`._forecast`). The first one is the model the scorecard is about;
            pass the untuned variant as another entry (``{"model": fc, "untuned": fc0}``).
        truth: Canonical Dataset or a path any reader of :mod:`aurora_mlops.data` accepts.
        variant: Variant name (selects the variables and event thresholds).
        climatology: Climatology by ``hour`` (see :func:`compute_climatology`); default: computed
            from the truth times before the first initialisation time (the training period),
            or from the whole truth when there are none (noted in the result).
        baselines: Baselines to build from truth (``persistence``, ``climatology``).
        chunk_inits: Initialisation times read per step (default: about 64 MiB per model).
        scratch_dir: Where a climatology too large for memory is kept while scoring (default:
            the system's temporary directory); removed afterwards.

    Returns:
        The :class:`EvaluationResult` (no files written).

    Raises:
        DataError: Mismatched grids, truth with gaps at needed times, an all-NaN field, no
            variable in common, or an unknown baseline.
    """
    spec = get_variant(variant)
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise DataError(f"unknown baseline(s) {unknown}: choose from {list(BASELINES)}")
    if not forecasts:
        raise DataError("no forecast to score: pass at least one forecast")
    map_large_arrays()  # freed fields go back to the system: memory flat in the period
    tr, truth_notes = _open_truth(truth, [v.store_name for v in spec.variables()
                                          if v.kind != "static"])
    tr, models, forecast_notes = _forecast_models(forecasts, tr)
    # A day-of-year climatology too large for memory goes to a Zarr store here while scoring.
    with tempfile.TemporaryDirectory(prefix=".climatology-", dir=scratch_dir) as tmp:
        plan, plan_notes = _plan(tr, models, climatology, variant, store=Path(tmp),
                                 chunk=chunk_inits, needed="climatology" in baselines)
        scored = [*models, *(plan.baseline(b) for b in baselines)]
        _score_loop(plan, scored)
        _check_all_scored(scored, tr)
    return finalise(spec.name, scored, [*truth_notes, *forecast_notes, *plan_notes],
                    plan.climatology_period)


def _plan(
    tr: _Truth, models: list[ModelState], given: xr.Dataset | None, variant: str, *,
    store: Path, chunk: int | None, needed: bool,
) -> tuple[_Plan, list[str]]:
    """The plan of the scoring loop for ``models`` (the forecasts), with notes on the
    climatology and on the events the truth cannot score."""
    inits = np.unique(np.concatenate([m.inits for m in models]))
    leads = np.unique(np.concatenate([m.leads for m in models]))
    _check_coverage(tr, inits, leads)
    variables = sorted({v for m in models for v in m.variables})
    levels = None
    if "level" in tr.ds.dims:
        lv = [m.levels for m in models if m.levels is not None]
        levels = np.unique(np.concatenate(lv)) if lv else tr.ds["level"].values
    clim, period, notes = _climatology(tr, given, variables, inits, leads, store,
                                       needed=needed or bool(variables))
    if levels is not None and "level" in clim.dims:
        clim = clim.sel(level=levels)
    clim = clim.assign_coords(lat=tr.ds["lat"], lon=tr.ds["lon"])
    events = [e for e in events_for(variant) if all(i in tr.variables for i in e.inputs)]
    notes += [f"Event {e.label}: the truth lacks {', '.join(e.inputs)}; not scored."
              for e in events_for(variant) if e not in events]
    plan = _Plan(truth=tr, climatology=clim, climatology_period=period, events=events,
                 inits=inits, leads=leads, variables=variables, levels=levels,
                 chunk=chunk or _auto_chunk(models))
    return plan, notes


def _forecast_models(
    forecasts: Mapping[str, xr.Dataset | str | Path], tr: _Truth
) -> tuple[_Truth, list[ModelState], list[str]]:
    """Every forecast on the truth's grid (the truth cut to the rows Aurora predicts first,
    see :func:`._grid.fit_truth_rows`), with what it can be scored on; notes on what is not
    scored (lead times some forecast lacks, and what :func:`_forecast_model` notes)."""
    opened = {name: _as_forecast(value, name) for name, value in forecasts.items()}
    ds, notes = fit_truth_rows(opened, tr.ds)
    tr = dataclasses.replace(tr, ds=ds)
    models = []
    for name, fc in opened.items():
        model, model_notes = _forecast_model(name, fc, tr)
        models.append(model)
        notes += model_notes
    if not any(m.variables for m in models):
        raise DataError(
            f"no forecast shares a variable with the truth (truth has "
            f"{', '.join(tr.variables)}); check the variable names"
        )
    all_leads = np.unique(np.concatenate([m.leads for m in models]))
    for m in models:
        lost = np.setdiff1d(all_leads, m.leads)
        if lost.size:
            notes.append(f"Forecast {m.name} lacks lead time(s) "
                         f"{', '.join(lead_text(x) for x in lost)}; not scored there.")
    return tr, models, notes


def _open_truth(truth: xr.Dataset | str | Path, wanted: list[str]) -> tuple[_Truth, list[str]]:
    """The truth, and a note for each of the variant's variables it lacks."""
    ds = open_truth(truth)
    variables = [str(n) for n in ds.data_vars if "time" in ds[n].dims]
    notes = [f"The truth lacks variable {v}; it is not scored." for v in wanted
             if v not in variables]
    return _Truth(ds=ds, variables=variables, wanted=wanted, index=pd.Index(ds["time"].values),
                  step=_time_step(ds)), notes


def _forecast_model(name: str, value: xr.Dataset, tr: _Truth) -> tuple[ModelState, list[str]]:
    """One forecast, on the truth's grid, with what it can be scored on, and notes on the
    rest."""
    fc = check_grid(name, value, tr.ds)
    scorable = [v for v in tr.variables if (("surf", v) in VARIABLES or ("atmos", v) in VARIABLES)]
    fvars = [str(n) for n in fc.data_vars]
    notes = []
    missing = [v for v in tr.wanted if v not in fvars and v in tr.variables]
    if missing:
        notes.append(f"Forecast {name} lacks variable(s) {', '.join(missing)}; not scored.")
    extra = [v for v in fvars if v not in scorable]
    if extra:
        notes.append(
            f"Forecast {name} variable(s) {', '.join(extra)} have no truth or are not in the "
            "vocabulary; not scored."
        )
    use = [v for v in fvars if v in scorable]
    levels = None
    if "level" in fc.dims:
        tl = tr.ds["level"].values if "level" in tr.ds.dims else np.array([])
        levels = np.intersect1d(fc["level"].values, tl)
        lost = np.setdiff1d(tl, fc["level"].values)
        if lost.size and any("level" in tr.ds[v].dims for v in use):
            notes.append(f"Forecast {name} lacks level(s) {lost.tolist()} hPa; not scored.")
        fc = fc.sel(level=levels)
    model = ModelState(name=name, kind="forecast", variables=use, leads=fc[LEAD_DIM].values,
                       inits=fc[INIT_DIM].values, levels=levels, data=fc[use])
    return model, notes


def _check_coverage(tr: _Truth, inits: np.ndarray, leads: np.ndarray) -> None:
    """Gaps inside the truth period are errors; times outside it are dropped later."""
    t0, t1 = tr.index[0].to_datetime64(), tr.index[-1].to_datetime64()
    needed = np.unique(np.concatenate([inits, (inits[:, None] + leads).ravel()]))
    inside = needed[(needed >= t0) & (needed <= t1)]
    gaps = inside[tr.index.get_indexer(inside) < 0]
    if gaps.size:
        raise DataError(
            f"the truth lacks {gaps.size} time(s) inside its period that the forecasts need "
            f"(first: {pd.Timestamp(gaps[0]).isoformat()}); pass a truth without gaps"
        )


def _climatology(
    tr: _Truth, given: xr.Dataset | None, variables: list[str], inits: np.ndarray,
    leads: np.ndarray, store: Path, *, needed: bool,
) -> tuple[xr.Dataset, str, list[str]]:
    """The climatology (given, or from the truth before the first initialisation), where
    it came from, and notes on what that means for ACC and the climatology baseline."""
    if given is not None or not needed:
        assert given is not None
        return given, "supplied by the caller", []
    angles = _angles()
    before = tr.ds.isel(time=np.nonzero(tr.index < inits[0])[0])
    source = before if before.sizes["time"] > 0 else tr.ds
    notes = []
    if before.sizes["time"] == 0:
        notes.append(
            "The climatology was computed from the evaluation period itself (no earlier "
            "truth); ACC and the climatology baseline are optimistic."
        )
    valid_times = (inits[:, None] + leads).ravel()
    seasonal = seasonal_climatology(source[variables], valid_times, angles=angles, store=store)
    if seasonal is None:
        clim = compute_climatology(source[variables], angles=angles)
        notes.append(_SHORT_CLIMATOLOGY.format(period=clim.attrs.get("period", "")))
        return clim, f"truth {clim.attrs.get('period', '')}, by hour of day", notes
    return seasonal, (f"truth {seasonal.attrs.get('period', '')}, by day of year x hour "
                      f"of day (+-{WINDOW_DAYS}-day window)"), notes


def _score_loop(plan: _Plan, models: list[ModelState]) -> None:
    """Read the truth one chunk of initialisation times at a time and score every model."""
    tr, step, chunk = plan.truth, plan.truth.step, plan.chunk
    accumulate = any(e.derive == "accumulate_24h" for e in plan.events)
    read = plan.variables + [v for e in plan.events for v in e.inputs
                             if v not in plan.variables and v in tr.variables]
    n_chunks = (plan.inits.size + chunk - 1) // chunk
    for ci in range(n_chunks):
        inits_c = plan.inits[ci * chunk : (ci + 1) * chunk]
        logger.info("scoring chunk %d/%d (%d initialisation times)", ci + 1, n_chunks,
                    len(inits_c))
        want = np.unique(np.concatenate([
            inits_c, (inits_c[:, None] + plan.leads).ravel(),
            *[(inits_c[:, None] + plan.leads - k * step).ravel()
              for k in range(1, int(np.timedelta64(24, "h") // step)) if accumulate],
        ]))
        pos = np.unique(tr.index.get_indexer(want))
        truth_chunk = tr.ds[read].isel(time=pos[pos >= 0]).load()
        if plan.levels is not None and "level" in truth_chunk.dims:
            truth_chunk = truth_chunk.sel(level=plan.levels)
        ctx = ChunkContext(
            truth=truth_chunk, climatology=plan.climatology, t_index=tr.index,
            weights=M.lat_weights(tr.ds["lat"]), angles=_angles(),
            npoints=tr.ds.sizes["lat"] * tr.ds.sizes["lon"], events=plan.events, step=step,
        )
        for m in models:
            score_chunk(m, inits_c, ctx)
        del truth_chunk, ctx
        release_freed_memory()


def _check_all_scored(models: list[ModelState], tr: _Truth) -> None:
    t0, t1 = tr.index[0], tr.index[-1]
    for m in models:
        check_scored(m.name, m.variables, m.counts.get("mse"), m.empty_pairs, m.inits)
        if m.kind == "forecast" and m.variables and m.pairs == 0:
            raise DataError(
                f"forecast {m.name!r}: no (initialisation, lead) pair has truth at both times "
                f"(forecast inits {pd.Timestamp(m.inits[0]).isoformat()}.."
                f"{pd.Timestamp(m.inits[-1]).isoformat()}, truth {t0.isoformat()}.."
                f"{t1.isoformat()}); pass a truth that covers the forecast period"
            )


def _auto_chunk(models: Sequence[ModelState]) -> int:
    per_init = 0
    for m in models:
        if m.data is None:
            continue
        per_init = max(per_init, sum(
            int(np.prod([s for d, s in m.data[v].sizes.items() if d != INIT_DIM])) * 8
            for v in m.variables
        ))
    per_init = max(per_init, 1)
    return int(max(1, min(256, _CHUNK_BYTES // per_init)))


def _angles() -> frozenset[str]:
    return frozenset(v.name for v in VARIABLES.values() if v.angle)


def _time_step(truth: xr.Dataset) -> np.timedelta64:
    t = truth["time"].values
    if t.size < 2:
        return np.timedelta64(6, "h")
    return np.timedelta64(int(np.median(np.diff(t).astype("timedelta64[s]").astype(np.int64))), "s")


def _as_forecast(value: xr.Dataset | str | Path, name: str) -> xr.Dataset:
    from aurora_mlops.evaluation._forecast import open_forecast

    if isinstance(value, xr.Dataset):
        return normalise_forecast(value, source=f"<{name}>")
    return open_forecast(value)
