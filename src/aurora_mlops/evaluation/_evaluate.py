"""Scoring: stream forecasts and truth over initialisation times, accumulate, finalise, write.

The loop reads one chunk of initialisation times at a time (every forecast, the baselines built
from the truth, and the truth at the valid times ``init + lead`` of that chunk), computes the
per-time spatial statistics of :mod:`._metrics`, and adds them into running sums whose size
depends on variables, levels and leads only. Memory therefore does not grow with the length of
the test period.

Order of means (WeatherBench2's): per initialisation time and lead the area-weighted spatial
statistic is computed; then the time mean is taken over initialisation times; RMSE and ensemble
spread are the square roots of the time-mean MSE and variance; ACC, Pearson, MAE, bias and CRPS
are plain time means of the per-time values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.errors import DataError
from aurora_mlops.evaluation import _metrics as M
from aurora_mlops.evaluation._baselines import (
    BASELINES,
    climatology_at,
    climatology_forecast,
    compute_climatology,
    persistence_forecast,
)
from aurora_mlops.evaluation._events import (
    EventSpec,
    confusion_counts,
    derive_quantity,
    event_scores,
    events_for,
)
from aurora_mlops.evaluation._forecast import INIT_DIM, LEAD_DIM, normalise_forecast, open_truth
from aurora_mlops.evaluation._gaps import add_empty_pairs, check_scored, lead_text
from aurora_mlops.evaluation._seasonal import WINDOW_DAYS, seasonal_climatology
from aurora_mlops.variables import VARIABLES
from aurora_mlops.variants import get_variant

__all__ = [
    "TABLE_COLUMNS",
    "EvaluationResult",
    "evaluate_forecasts",
    "score_forecasts",
]

logger = logging.getLogger(__name__)

#: Columns of the tidy metrics table, in order.
TABLE_COLUMNS: tuple[str, ...] = ("model", "metric", "variable", "level", "lead_hours", "value")

#: Metrics where a smaller value is better (the rest: larger is better, bias: closer to 0).
LOWER_IS_BETTER = ("rmse", "mae", "crps")

_MEAN_ORDER = (
    "Per initialisation time and lead, each statistic is an area-weighted (cos latitude) spatial "
    "mean over the points where forecast and truth are both finite (weights renormalised). "
    "Then: rmse = sqrt(time mean of MSE); spread = sqrt(time mean of ensemble variance); "
    "mae, bias, crps, acc, pearson = time means of the per-time values."
)

_CHUNK_BYTES = 64 * 2**20

_SHORT_CLIMATOLOGY = (
    f"The climatology period ({{period}}) leaves some valid days without a day within "
    f"{WINDOW_DAYS} days of their day of year, so ACC and the climatology baseline use an "
    "hour-of-day climatology: the seasonal cycle stays in the anomalies (ACC is optimistic over "
    "long periods)."
)


@dataclass(frozen=True)
class EvaluationResult:
    """Everything :func:`score_forecasts` found.

    Attributes:
        variant: The variant scored.
        models: Forecast names then baseline names, in table order.
        table: Tidy table, one row per model, metric, variable, level and lead
            (:data:`TABLE_COLUMNS`; ``level`` is null at the surface).
        scorecard: ``{model: {other: {metric: {"wins", "targets", "fraction"}}}}``: how often
            ``model`` beats ``other`` over the variable x level x lead targets both have.
        events: One dict per model and event quantity with the summed confusion counts.
        notes: Sentences on what could not be scored (missing variables, leads, levels).
        nan_skipped: ``{model: {variable: points skipped because NaN}}``.
        nan_pairs_skipped: ``{model: {variable: {"+24 h": pairs skipped}}}``: (init, lead)
            pairs whose forecast or truth field is NaN at every grid point (missing analyses).
        pairs: ``{model: forecast-truth pairs (initialisation x lead) scored}``.
        climatology_period: Where the climatology came from.
        files: Files written by :func:`evaluate_forecasts` (empty otherwise).
        checkpoint: Which checkpoint made the ``model`` forecast (``path``, ``sha256``,
            ``trial``), when it came from ``evaluate --model``; ``package`` refuses an
            evaluation of another checkpoint.
    """

    variant: str
    models: list[str]
    table: pd.DataFrame
    scorecard: dict[str, Any]
    events: list[dict[str, Any]]
    notes: list[str]
    nan_skipped: dict[str, dict[str, int]]
    pairs: dict[str, int]
    climatology_period: str
    files: list[Path] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    nan_pairs_skipped: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (what ``metrics.json`` holds)."""
        rows = [
            {k: (None if (k == "level" and pd.isna(v)) else v) for k, v in r.items()}
            for r in self.table.to_dict(orient="records")
        ]
        for r in rows:
            if r["level"] is not None:
                r["level"] = int(r["level"])
        return {
            "variant": self.variant,
            "models": self.models,
            "mean_order": _MEAN_ORDER,
            "climatology": self.climatology_period,
            "pairs": self.pairs,
            "nan_skipped": self.nan_skipped,
            "nan_pairs_skipped": self.nan_pairs_skipped,
            "notes": self.notes,
            "scorecard": self.scorecard,
            "events": self.events,
            "rows": rows,
            "checkpoint": self.checkpoint,
        }


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------


def _angles() -> frozenset[str]:
    return frozenset(v.name for v in VARIABLES.values() if v.angle)


def _check_grid(name: str, fc: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    for c in ("lat", "lon"):
        a, b = fc[c].values, truth[c].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            raise DataError(
                f"forecast {name!r} is on a different grid than the truth ({c}: "
                f"{a.size} points {a.min():g}..{a.max():g} vs {b.size} points "
                f"{b.min():g}..{b.max():g}); regrid one of them so that both match"
            )
    return fc.assign_coords(lat=truth["lat"], lon=truth["lon"])


def _time_step(truth: xr.Dataset) -> np.timedelta64:
    t = truth["time"].values
    if t.size < 2:
        return np.timedelta64(6, "h")
    return np.timedelta64(int(np.median(np.diff(t).astype("timedelta64[s]").astype(np.int64))), "s")


@dataclass
class _Model:
    name: str
    kind: str  # "forecast" | "persistence" | "climatology"
    variables: list[str]
    leads: np.ndarray
    inits: np.ndarray
    levels: np.ndarray | None
    data: xr.Dataset | None = None
    sums: dict[str, xr.Dataset] = field(default_factory=dict)
    counts: dict[str, xr.Dataset] = field(default_factory=dict)
    events: dict[str, xr.Dataset] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    empty_pairs: dict[str, dict[str, int]] = field(default_factory=dict)
    pairs: int = 0


def _as_forecast(value: xr.Dataset | str | Path, name: str) -> xr.Dataset:
    from aurora_mlops.evaluation._forecast import open_forecast

    if isinstance(value, xr.Dataset):
        return normalise_forecast(value, source=f"<{name}>")
    return open_forecast(value)


# --------------------------------------------------------------------------------------------
# Per-chunk statistics
# --------------------------------------------------------------------------------------------


def _gather(truth_chunk: xr.Dataset, times: np.ndarray) -> tuple[xr.Dataset, np.ndarray]:
    """Truth at a 2-D array of times (init x lead); ``ok`` is False where a time is absent."""
    index = pd.Index(truth_chunk["time"].values)
    pos = index.get_indexer(times.ravel()).reshape(times.shape)
    ok = pos >= 0
    sel = xr.DataArray(np.where(ok, pos, 0), dims=(INIT_DIM, LEAD_DIM))
    out = truth_chunk.isel(time=sel)
    return out.drop_vars([c for c in out.coords if c == "time"]), ok


def _per_time(
    f: xr.Dataset,
    t: xr.Dataset,
    clim: xr.Dataset | None,
    *,
    weights: xr.DataArray,
    angles: frozenset[str],
) -> dict[str, xr.Dataset]:
    """Per-(init, lead[, level]) spatial statistics of every variable."""
    ens = "member" in f.dims
    ang = [str(n) for n in f.data_vars if n in angles]
    fm = M.ensemble_mean(f, angles=ang) if ens else f
    stats = {
        "mse": M.mse(fm, t, weights=weights, angles=ang),
        "mae": M.mae(fm, t, weights=weights, angles=ang),
        "bias": M.bias(fm, t, weights=weights, angles=ang),
    }
    linear = [str(n) for n in f.data_vars if n not in angles]
    if linear:
        stats["pearson"] = M.pearson(fm[linear], t[linear], weights=weights)
        if clim is not None:
            cl = [n for n in linear if n in clim.data_vars]
            if cl:
                stats["acc"] = M.acc(fm[cl], t[cl], weights=weights, climatology=clim[cl])
    if ens:
        stats["crps"] = M.crps(f, t, weights=weights, angles=ang)
        stats["ens_var"] = M.ensemble_variance(f, weights=weights, angles=ang)
    stats["_valid"] = M.valid_count(fm, t)
    return stats


def _accumulate(model: _Model, stats: Mapping[str, xr.Dataset], ok: xr.DataArray) -> None:
    for key, ds in stats.items():
        if key == "_valid":
            continue
        ds = ds.where(ok)
        s = ds.sum(INIT_DIM, skipna=True)
        c = ds.notnull().sum(INIT_DIM)
        if key in model.sums:
            model.sums[key] = model.sums[key] + s
            model.counts[key] = model.counts[key] + c
        else:
            model.sums[key], model.counts[key] = s, c


def _check_nan(model: _Model, valid: xr.Dataset, ok: xr.DataArray, npoints: int) -> None:
    """Count NaN points, and (init, lead) pairs whose field is NaN everywhere (skipped)."""
    add_empty_pairs(model.empty_pairs, valid, ok)
    for n in map(str, valid.data_vars):
        skipped = int(((npoints - valid[n]) * ok).sum())
        model.skipped[n] = model.skipped.get(n, 0) + skipped


def _event_chunk(
    model: _Model,
    event: EventSpec,
    fm: xr.Dataset,
    truth_chunk: xr.Dataset,
    t: xr.Dataset,
    ok: np.ndarray,
    inits: np.ndarray,
    step: np.timedelta64,
) -> None:
    okda = xr.DataArray(ok, dims=(INIT_DIM, LEAD_DIM))
    if event.derive != "accumulate_24h":
        fq = derive_quantity(event, fm).where(okda)
        tq = derive_quantity(event, t).where(okda)
    else:
        n = int(np.timedelta64(24, "h") // step)
        leads = fm[LEAD_DIM].values
        have = set(leads.tolist())
        eligible = [
            L for L in leads
            if all((L - k * step) in have and (L - k * step) > np.timedelta64(0) for k in range(n))
        ]
        if not eligible:
            return
        fv = fm["tp"]
        sums: list[xr.DataArray] = []
        for L in eligible:
            acc_l = fv.sel({LEAD_DIM: L}, drop=True)
            for k in range(1, n):
                acc_l = acc_l + fv.sel({LEAD_DIM: L - k * step}, drop=True)
            sums.append(acc_l)
        fq = xr.concat(sums, dim=LEAD_DIM).assign_coords({LEAD_DIM: eligible})
        okl = ok[:, [int(np.nonzero(leads == L)[0][0]) for L in eligible]]
        tsum: xr.DataArray | None = None
        for k in range(n):
            times = inits[:, None] + np.asarray(eligible)[None, :] - k * step
            part, okk = _gather(truth_chunk[["tp"]], times)
            okl = okl & okk
            tsum = part["tp"] if tsum is None else tsum + part["tp"]
        assert tsum is not None
        okda = xr.DataArray(okl, dims=(INIT_DIM, LEAD_DIM))
        tq = tsum.assign_coords({LEAD_DIM: eligible}).where(okda)
        fq = fq.transpose(*tq.dims).where(okda)
    counts = confusion_counts(fq, tq, threshold=event.threshold, dims=(INIT_DIM, "lat", "lon"))
    prev = model.events.get(event.quantity)
    model.events[event.quantity] = counts if prev is None else prev + counts


# --------------------------------------------------------------------------------------------
# The scoring loop
# --------------------------------------------------------------------------------------------


def score_forecasts(
    forecasts: Mapping[str, xr.Dataset | str | Path],
    truth: xr.Dataset | str | Path,
    *,
    variant: str,
    climatology: xr.Dataset | None = None,
    baselines: Sequence[str] = BASELINES,
    chunk_inits: int | None = None,
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
    angles = _angles()
    tr = open_truth(truth)
    notes: list[str] = []
    truth_vars = [str(n) for n in tr.data_vars if "time" in tr[n].dims]
    wanted = [v.store_name for v in spec.variables() if v.kind != "static"]
    for v in wanted:
        if v not in truth_vars:
            notes.append(f"The truth lacks variable {v}; it is not scored.")
    scorable = [v for v in truth_vars if (("surf", v) in VARIABLES or ("atmos", v) in VARIABLES)]
    t_index = pd.Index(tr["time"].values)
    t0, t1 = t_index[0], t_index[-1]
    step = _time_step(tr)

    models: list[_Model] = []
    for name, value in forecasts.items():
        fc = _check_grid(name, _as_forecast(value, name), tr)
        fvars = [str(n) for n in fc.data_vars]
        missing = [v for v in wanted if v not in fvars and v in truth_vars]
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
            tl = tr["level"].values if "level" in tr.dims else np.array([])
            levels = np.intersect1d(fc["level"].values, tl)
            lost = np.setdiff1d(tl, fc["level"].values)
            if lost.size and any("level" in tr[v].dims for v in use):
                notes.append(f"Forecast {name} lacks level(s) {lost.tolist()} hPa; not scored.")
            fc = fc.sel(level=levels)
        models.append(
            _Model(name=name, kind="forecast", variables=use, leads=fc[LEAD_DIM].values,
                   inits=fc[INIT_DIM].values, levels=levels, data=fc[use])
        )
    if not any(m.variables for m in models):
        raise DataError(
            f"no forecast shares a variable with the truth (truth has {', '.join(truth_vars)}); "
            "check the variable names"
        )
    all_leads = np.unique(np.concatenate([m.leads for m in models]))
    all_inits = np.unique(np.concatenate([m.inits for m in models]))
    for m in models:
        lost = np.setdiff1d(all_leads, m.leads)
        if lost.size:
            notes.append(f"Forecast {m.name} lacks lead time(s) "
                         f"{', '.join(lead_text(x) for x in lost)}; not scored there.")

    # Truth coverage: gaps inside the truth period are errors, times outside it are dropped.
    needed = np.unique(np.concatenate([all_inits, (all_inits[:, None] + all_leads).ravel()]))
    inside = needed[(needed >= t0.to_datetime64()) & (needed <= t1.to_datetime64())]
    gaps = inside[t_index.get_indexer(inside) < 0]
    if gaps.size:
        raise DataError(
            f"the truth lacks {gaps.size} time(s) inside its period that the forecasts need "
            f"(first: {pd.Timestamp(gaps[0]).isoformat()}); pass a truth without gaps"
        )

    union_vars = sorted({v for m in models for v in m.variables})
    union_levels = None
    if "level" in tr.dims:
        lv = [m.levels for m in models if m.levels is not None]
        union_levels = np.unique(np.concatenate(lv)) if lv else tr["level"].values
    clim_period = "supplied by the caller"
    if climatology is None and ("climatology" in baselines or union_vars):
        before = tr.isel(time=np.nonzero(t_index < all_inits[0])[0])
        source = before if before.sizes["time"] > 0 else tr
        if before.sizes["time"] == 0:
            notes.append(
                "The climatology was computed from the evaluation period itself (no earlier "
                "truth); ACC and the climatology baseline are optimistic."
            )
        valid_times = (all_inits[:, None] + all_leads).ravel()
        seasonal = seasonal_climatology(source[union_vars], valid_times, angles=angles)
        if seasonal is None:
            climatology = compute_climatology(source[union_vars], angles=angles)
            notes.append(_SHORT_CLIMATOLOGY.format(period=climatology.attrs.get("period", "")))
            clim_period = f"truth {climatology.attrs.get('period', '')}, by hour of day"
        else:
            climatology = seasonal
            clim_period = (f"truth {climatology.attrs.get('period', '')}, by day of year x hour "
                           f"of day (+-{WINDOW_DAYS}-day window)")
    assert climatology is not None
    if union_levels is not None and "level" in climatology.dims:
        climatology = climatology.sel(level=union_levels)
    climatology = climatology.assign_coords(lat=tr["lat"], lon=tr["lon"])
    for b in baselines:
        models.append(
            _Model(name=b, kind=b, variables=union_vars, leads=all_leads, inits=all_inits,
                   levels=union_levels)
        )

    weights = M.lat_weights(tr["lat"])
    npoints = tr.sizes["lat"] * tr.sizes["lon"]
    events = [
        e for e in events_for(variant) if all(i in truth_vars for i in e.inputs)
    ]
    for e in events_for(variant):
        if e not in events:
            notes.append(f"Event {e.label}: the truth lacks {', '.join(e.inputs)}; not scored.")

    chunk = chunk_inits or _auto_chunk(models, tr)
    n_chunks = (all_inits.size + chunk - 1) // chunk
    for ci in range(n_chunks):
        inits_c = all_inits[ci * chunk : (ci + 1) * chunk]
        logger.info("scoring chunk %d/%d (%d initialisation times)", ci + 1, n_chunks, len(inits_c))
        want = np.unique(np.concatenate([
            inits_c, (inits_c[:, None] + all_leads).ravel(),
            *[(inits_c[:, None] + all_leads - k * step).ravel()
              for k in range(1, int(np.timedelta64(24, "h") // step))
              if any(e.derive == "accumulate_24h" for e in events)],
        ]))
        pos = np.unique(t_index.get_indexer(want))
        pos = pos[pos >= 0]
        truth_chunk = tr[union_vars + [v for e in events for v in e.inputs
                                       if v not in union_vars and v in truth_vars]]
        truth_chunk = truth_chunk.isel(time=pos).load()
        if union_levels is not None and "level" in truth_chunk.dims:
            truth_chunk = truth_chunk.sel(level=union_levels)
        for m in models:
            _score_chunk(m, inits_c, truth_chunk, climatology, t_index, weights, angles,
                         npoints, events, step)
    for m in models:
        check_scored(m.name, m.variables, m.counts.get("mse"), m.empty_pairs, m.inits)
        if m.kind == "forecast" and m.variables and m.pairs == 0:
            raise DataError(
                f"forecast {m.name!r}: no (initialisation, lead) pair has truth at both times "
                f"(forecast inits {pd.Timestamp(m.inits[0]).isoformat()}.."
                f"{pd.Timestamp(m.inits[-1]).isoformat()}, truth {t0.isoformat()}.."
                f"{t1.isoformat()}); pass a truth that covers the forecast period"
            )
    return _finalise(spec.name, models, notes, clim_period)


def _auto_chunk(models: Sequence[_Model], tr: xr.Dataset) -> int:
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


def _score_chunk(
    m: _Model,
    inits_c: np.ndarray,
    truth_chunk: xr.Dataset,
    climatology: xr.Dataset,
    t_index: pd.Index,
    weights: xr.DataArray,
    angles: frozenset[str],
    npoints: int,
    events: Sequence[EventSpec],
    step: np.timedelta64,
) -> None:
    inits = np.intersect1d(inits_c, m.inits)
    if inits.size == 0 or not m.variables or truth_chunk.sizes["time"] == 0:
        return
    valid = inits[:, None] + m.leads[None, :]
    t, ok_valid = _gather(truth_chunk[m.variables], valid)
    ok_init = t_index.get_indexer(inits) >= 0
    ok = ok_valid & ok_init[:, None]
    if not ok.any():
        return
    t = t.assign_coords({INIT_DIM: inits, LEAD_DIM: m.leads})
    if m.kind == "forecast":
        assert m.data is not None
        f = m.data.sel({INIT_DIM: inits}).load()
    elif m.kind == "persistence":
        safe = np.where(ok_init, inits, truth_chunk["time"].values[0])
        f = persistence_forecast(truth_chunk, safe, m.leads, variables=m.variables)
        f = f.assign_coords({INIT_DIM: inits})
    else:
        f = climatology_forecast(climatology, inits, m.leads, variables=m.variables)
    present = [v for v in m.variables if v in f.data_vars]
    f = f[present].astype(np.float64)
    t = t[present].astype(np.float64)
    clim_t = climatology_at(climatology[[v for v in present if v in climatology.data_vars]], valid)
    clim_t = clim_t.assign_coords({INIT_DIM: inits, LEAD_DIM: m.leads})
    okda = xr.DataArray(ok, dims=(INIT_DIM, LEAD_DIM), coords={INIT_DIM: inits, LEAD_DIM: m.leads})
    stats = _per_time(f, t, clim_t, weights=weights, angles=angles)
    _check_nan(m, stats["_valid"], okda, npoints)
    _accumulate(m, stats, okda)
    m.pairs += int(ok.sum())
    fm = M.ensemble_mean(f, angles=[v for v in present if v in angles]) if "member" in f.dims else f
    for e in events:
        if all(i in fm.data_vars for i in e.inputs):
            _event_chunk(m, e, fm, truth_chunk, t, ok, inits, step)


# --------------------------------------------------------------------------------------------
# Finalising
# --------------------------------------------------------------------------------------------


def _rows(model: str, metric: str, ds: xr.Dataset) -> Iterable[dict[str, Any]]:
    for var in map(str, ds.data_vars):
        da = ds[var]
        levels = da["level"].values if "level" in da.dims else [None]
        for lev in levels:
            x = da.sel(level=lev) if lev is not None else da
            for lead, value in zip(x[LEAD_DIM].values, np.atleast_1d(x.values), strict=True):
                if not np.isfinite(value):
                    continue
                yield {
                    "model": model,
                    "metric": metric,
                    "variable": var,
                    "level": None if lev is None else int(lev),
                    "lead_hours": float(lead / np.timedelta64(1, "h")),
                    "value": float(value),
                }


def _finalise(variant: str, models: list[_Model], notes: list[str], clim: str) -> EvaluationResult:
    rows: list[dict[str, Any]] = []
    finals: dict[str, dict[str, xr.Dataset]] = {}
    events_out: list[dict[str, Any]] = []
    for m in models:
        if not m.sums:
            notes.append(f"{m.name}: no forecast-truth pair could be scored.")
            continue
        mean = {k: m.sums[k] / m.counts[k].where(m.counts[k] > 0) for k in m.sums}
        fin: dict[str, xr.Dataset] = {
            "rmse": np.sqrt(mean["mse"]),  # type: ignore[dict-item]
            "mae": mean["mae"],
            "bias": mean["bias"],
        }
        for k in ("acc", "pearson", "crps"):
            if k in mean:
                fin[k] = mean[k]
        if "ens_var" in mean:
            spread = np.sqrt(mean["ens_var"])
            fin["spread"] = spread  # type: ignore[assignment]
            fin["spread_skill"] = spread / fin["rmse"]
        finals[m.name] = fin
        for metric, ds in fin.items():
            rows.extend(_rows(m.name, metric, ds))
        for quantity, counts in m.events.items():
            scores = event_scores(counts)
            for k in ("hits", "misses", "false_alarms", "correct_negatives"):
                rows.extend(_rows(m.name, f"event_{k}", counts[[k]].rename({k: quantity})))
            for k in map(str, scores.data_vars):
                rows.extend(_rows(m.name, f"event_{k}", scores[[k]].rename({k: quantity})))
            events_out.append({
                "model": m.name,
                "quantity": quantity,
                **{k: int(counts[k].sum()) for k in map(str, counts.data_vars)},
            })
    forecast_names = [m.name for m in models if m.kind == "forecast"]
    others = [m.name for m in models]
    # Skill scores: 1 - RMSE(model) / RMSE(reference).
    for a in forecast_names:
        for b in others:
            if a == b or a not in finals or b not in finals:
                continue
            ra, rb = finals[a]["rmse"], finals[b]["rmse"]
            common = [v for v in ra.data_vars if v in rb.data_vars]
            skill = 1.0 - ra[common] / rb[common].where(rb[common] > 0)
            rows.extend(_rows(a, f"rmse_skill_vs_{b}", skill))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["level"] = table["level"].astype("Int64")
    table["lead_hours"] = table["lead_hours"].astype(np.float64)
    table["value"] = table["value"].astype(np.float64)
    order = {n: i for i, n in enumerate(others)}
    table = table.assign(_o=table["model"].map(order)).sort_values(
        ["_o", "metric", "variable", "level", "lead_hours"], na_position="first", kind="stable"
    ).drop(columns="_o").reset_index(drop=True)
    scorecard = _scorecard(table, forecast_names, others)
    return EvaluationResult(
        variant=variant,
        models=[m.name for m in models],
        table=table,
        scorecard=scorecard,
        events=events_out,
        notes=notes,
        nan_skipped={m.name: dict(sorted(m.skipped.items())) for m in models},
        nan_pairs_skipped={m.name: dict(sorted(m.empty_pairs.items())) for m in models},
        pairs={m.name: m.pairs for m in models},
        climatology_period=clim,
    )


def _scorecard(table: pd.DataFrame, forecasts: list[str], others: list[str]) -> dict[str, Any]:
    """Fraction of variable x level x lead targets where each forecast beats each other entry."""
    keys = ["variable", "level", "lead_hours"]
    card: dict[str, Any] = {}
    for a in forecasts:
        card[a] = {}
        for b in others:
            if a == b:
                continue
            card[a][b] = {}
            for metric in ("rmse", "acc"):
                ta = table[(table["model"] == a) & (table["metric"] == metric)]
                tb = table[(table["model"] == b) & (table["metric"] == metric)]
                j = ta.merge(tb, on=keys, suffixes=("_a", "_b"))
                if j.empty:
                    continue
                better = (j["value_a"] < j["value_b"]) if metric == "rmse" else (
                    j["value_a"] > j["value_b"])
                wins, n = int(better.sum()), len(j)
                card[a][b][metric] = {"wins": wins, "targets": n, "fraction": wins / n}
    return card


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def evaluate_forecasts(
    forecasts: Mapping[str, xr.Dataset | str | Path],
    truth: xr.Dataset | str | Path,
    *,
    variant: str,
    out_dir: str | Path,
    climatology: xr.Dataset | None = None,
    baselines: Sequence[str] = BASELINES,
    chunk_inits: int | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Score forecasts and write ``metrics.json``, ``metrics.parquet``, plots and reports.

    See :func:`score_forecasts` for the arguments; ``checkpoint`` (``path``, ``sha256``,
    ``trial``) says which checkpoint made the ``model`` forecast. Every file is first written into a
    temporary folder next to ``out_dir``, which takes ``out_dir``'s place in one step only when
    all are complete (:func:`aurora_mlops._io.atomic_dir`), so a failure leaves nothing
    half-written.

    Returns:
        The result, with ``files`` listing what was written.
    """
    from aurora_mlops._io import atomic_dir
    from aurora_mlops.evaluation._page import write_page

    result = score_forecasts(
        forecasts, truth, variant=variant, climatology=climatology, baselines=baselines,
        chunk_inits=chunk_inits,
    )
    if checkpoint is not None:
        result = dataclasses.replace(result, checkpoint=dict(checkpoint))
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(
            json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        result.table.to_parquet(tmp / "metrics.parquet", engine="pyarrow", index=False)
        write_page(result, tmp)
        written = [out / p.name for p in sorted(tmp.iterdir())]
    logger.info("wrote %d files to %s", len(written), out)
    return EvaluationResult(**{**result.__dict__, "files": written})
