"""Per-chunk statistics: what one chunk of initialisation times adds to each model's sums.

For one chunk the truth at the valid times ``init + lead`` is gathered, each model's forecast
for those initialisation times is read (or built, for the baselines), the per-time spatial
statistics of :mod:`._metrics` are computed and added into running sums whose size depends on
variables, levels and leads only, and the event confusion counts are added up likewise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

import aurora_mlops.evaluation._metrics as M
from aurora_mlops.evaluation._baselines import (
    climatology_at,
    climatology_forecast,
    persistence_forecast,
)
from aurora_mlops.evaluation._events import EventSpec, confusion_counts, derive_quantity
from aurora_mlops.evaluation._forecast import INIT_DIM, LEAD_DIM
from aurora_mlops.evaluation._gaps import add_empty_pairs

__all__ = ["ChunkContext", "ModelState", "gather", "score_chunk"]

@dataclass
class ModelState:
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


@dataclass(frozen=True)
class ChunkContext:
    """What every model's statistics of one chunk share."""

    truth: xr.Dataset
    climatology: xr.Dataset
    t_index: pd.Index
    weights: xr.DataArray
    angles: frozenset[str]
    npoints: int
    events: Sequence[EventSpec]
    step: np.timedelta64


def gather(truth_chunk: xr.Dataset, times: np.ndarray) -> tuple[xr.Dataset, np.ndarray]:
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

def _accumulate(model: ModelState, stats: Mapping[str, xr.Dataset], ok: xr.DataArray) -> None:
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

def _check_nan(model: ModelState, valid: xr.Dataset, ok: xr.DataArray, npoints: int) -> None:
    """Count NaN points, and (init, lead) pairs whose field is NaN everywhere (skipped)."""
    add_empty_pairs(model.empty_pairs, valid, ok)
    for n in map(str, valid.data_vars):
        skipped = int(((npoints - valid[n]) * ok).sum())
        model.skipped[n] = model.skipped.get(n, 0) + skipped

def _event_chunk(
    model: ModelState,
    event: EventSpec,
    fm: xr.Dataset,
    ctx: ChunkContext,
    t: xr.Dataset,
    ok: np.ndarray,
    inits: np.ndarray,
) -> None:
    if event.derive != "accumulate_24h":
        okda = xr.DataArray(ok, dims=(INIT_DIM, LEAD_DIM))
        fq = derive_quantity(event, fm).where(okda)
        tq = derive_quantity(event, t).where(okda)
    else:
        pair = _accumulated_24h(fm, ctx.truth, ok, inits, ctx.step)
        if pair is None:
            return
        fq, tq = pair
    counts = confusion_counts(fq, tq, threshold=event.threshold, dims=(INIT_DIM, "lat", "lon"))
    prev = model.events.get(event.quantity)
    model.events[event.quantity] = counts if prev is None else prev + counts


def _accumulated_24h(
    fm: xr.Dataset, truth_chunk: xr.Dataset, ok: np.ndarray, inits: np.ndarray,
    step: np.timedelta64,
) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Forecast and truth ``tp`` summed over the 24 h before each lead that has all of them;
    ``None`` when no lead has."""
    n = int(np.timedelta64(24, "h") // step)
    leads = fm[LEAD_DIM].values
    have = set(leads.tolist())
    eligible = [
        L for L in leads
        if all((L - k * step) in have and (L - k * step) > np.timedelta64(0) for k in range(n))
    ]
    if not eligible:
        return None
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
        part, okk = gather(truth_chunk[["tp"]], times)
        okl = okl & okk
        tsum = part["tp"] if tsum is None else tsum + part["tp"]
    assert tsum is not None
    okda = xr.DataArray(okl, dims=(INIT_DIM, LEAD_DIM))
    tq = tsum.assign_coords({LEAD_DIM: eligible}).where(okda)
    return fq.transpose(*tq.dims).where(okda), tq


def score_chunk(m: ModelState, inits_c: np.ndarray, ctx: ChunkContext) -> None:
    """Add the statistics of model ``m`` at initialisation times ``inits_c`` to its sums."""
    truth_chunk, climatology = ctx.truth, ctx.climatology
    inits = np.intersect1d(inits_c, m.inits)
    if inits.size == 0 or not m.variables or truth_chunk.sizes["time"] == 0:
        return
    valid = inits[:, None] + m.leads[None, :]
    t, ok_valid = gather(truth_chunk[m.variables], valid)
    ok_init = ctx.t_index.get_indexer(inits) >= 0
    ok = ok_valid & ok_init[:, None]
    if not ok.any():
        return
    t = t.assign_coords({INIT_DIM: inits, LEAD_DIM: m.leads})
    f = _forecast_of(m, inits, ok_init, ctx)
    present = [v for v in m.variables if v in f.data_vars]
    f = f[present].astype(np.float64)
    t = t[present].astype(np.float64)
    clim_t = climatology_at(climatology[[v for v in present if v in climatology.data_vars]], valid)
    clim_t = clim_t.assign_coords({INIT_DIM: inits, LEAD_DIM: m.leads})
    okda = xr.DataArray(ok, dims=(INIT_DIM, LEAD_DIM), coords={INIT_DIM: inits, LEAD_DIM: m.leads})
    stats = _per_time(f, t, clim_t, weights=ctx.weights, angles=ctx.angles)
    _check_nan(m, stats["_valid"], okda, ctx.npoints)
    _accumulate(m, stats, okda)
    m.pairs += int(ok.sum())
    angles = [v for v in present if v in ctx.angles]
    fm = M.ensemble_mean(f, angles=angles) if "member" in f.dims else f
    for e in ctx.events:
        if all(i in fm.data_vars for i in e.inputs):
            _event_chunk(m, e, fm, ctx, t, ok, inits)


def _forecast_of(
    m: ModelState, inits: np.ndarray, ok_init: np.ndarray, ctx: ChunkContext
) -> xr.Dataset:
    """Model ``m``'s forecast from ``inits``: read from its data, or built from the truth."""
    if m.kind == "forecast":
        assert m.data is not None
        return m.data.sel({INIT_DIM: inits}).load()
    if m.kind == "persistence":
        safe = np.where(ok_init, inits, ctx.truth["time"].values[0])
        f = persistence_forecast(ctx.truth, safe, m.leads, variables=m.variables)
        return f.assign_coords({INIT_DIM: inits})
    return climatology_forecast(ctx.climatology, inits, m.leads, variables=m.variables)
