"""Pure metric functions over xarray, in the form ``(forecast, truth, *, weights) -> Dataset``.

Every function here reduces only the spatial dimensions ``lat`` and ``lon``; every other
dimension (initialisation ``time``, ``prediction_timedelta``, ``level``) is kept. Averaging over
time is a separate step (:func:`time_mean_then_finalise` in :mod:`._evaluate`), in the order
WeatherBench2 uses:

* RMSE over a period is ``sqrt(mean_t(MSE_t))``: the square root of the time mean of the
  area-weighted spatial mean squared error (not the mean of per-time RMSEs);
* MAE, bias, CRPS are the time means of their area-weighted spatial means;
* anomaly correlation (ACC) and Pearson correlation are computed per time over space and then
  averaged over time;
* ensemble spread is ``sqrt(mean_t(mean_space(var_members)))``.

Missing values (NaN in forecast or truth) are skipped: the area weights of the remaining points
are renormalised so that they still sum to one. Directions (variables whose
:attr:`aurora_mlops.variables.VariableSpec.angle` is set) are scored as circular quantities: the
error of 350 against 10 degrees is -20 degrees, not 340.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import xarray as xr

__all__ = [
    "SPATIAL_DIMS",
    "acc",
    "bias",
    "circular_difference",
    "circular_mean",
    "crps",
    "ensemble_mean",
    "ensemble_variance",
    "error",
    "lat_weights",
    "mae",
    "mse",
    "pearson",
    "spatial_mean",
    "valid_count",
]

SPATIAL_DIMS: tuple[str, str] = ("lat", "lon")
MEMBER_DIM = "member"


def lat_weights(lat: xr.DataArray) -> xr.DataArray:
    """Area weights proportional to ``cos(latitude)``, normalised to a mean of one.

    Args:
        lat: Latitudes in degrees north, 1-D along ``lat`` (any order).

    Returns:
        Weights along ``lat`` (same coordinate), ``mean == 1``. The poles get weight zero.
    """
    w = np.cos(np.deg2rad(lat.astype(np.float64)))
    w = w.clip(min=0.0)
    return w / w.mean()


def circular_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """``a - b`` for directions in degrees, wrapped into ``[-180, 180)``."""
    return (a - b + 180.0) % 360.0 - 180.0


def circular_mean(x: xr.DataArray, dim: str) -> xr.DataArray:
    """Mean direction in degrees ``[0, 360)`` along ``dim`` (through the mean unit vector)."""
    rad: xr.DataArray = x * (np.pi / 180.0)
    s: xr.DataArray = xr.apply_ufunc(np.sin, rad).mean(dim)
    c: xr.DataArray = xr.apply_ufunc(np.cos, rad).mean(dim)
    ang: xr.DataArray = xr.apply_ufunc(np.arctan2, s, c) * (180.0 / np.pi)
    return ang % 360.0


def _names(ds: xr.Dataset) -> list[str]:
    return [str(n) for n in ds.data_vars]


def error(
    forecast: xr.Dataset, truth: xr.Dataset, *, angles: Collection[str] = ()
) -> xr.Dataset:
    """Forecast minus truth, circular for the variables named in ``angles``."""
    out = {}
    for name in _names(forecast):
        if name in angles:
            out[name] = circular_difference(forecast[name], truth[name])
        else:
            out[name] = forecast[name] - truth[name]
    return xr.Dataset(out)


def spatial_mean(x: xr.Dataset, *, weights: xr.DataArray) -> xr.Dataset:
    """Area-weighted mean over ``lat``/``lon`` that skips NaN and renormalises the weights.

    Args:
        x: Fields with dimensions ``lat`` and ``lon`` (and any others, which are kept).
        weights: Weights along ``lat`` (see :func:`lat_weights`).

    Returns:
        ``sum(w * x) / sum(w over non-NaN points)``; NaN where every point is NaN.
    """
    out = {}
    for name in _names(x):
        v = x[name]
        fast = _spatial_mean_numpy(v, weights)
        if fast is not None:
            out[name] = fast
            continue
        w = weights.broadcast_like(v).where(v.notnull())
        num = (v * weights).sum(SPATIAL_DIMS, skipna=True)
        den = w.sum(SPATIAL_DIMS, skipna=True)
        out[name] = num / den.where(den > 0)
    return xr.Dataset(out)


def _spatial_mean_numpy(v: xr.DataArray, weights: xr.DataArray) -> xr.DataArray | None:
    """:func:`spatial_mean` of one in-memory field whose ``lat`` is the weights' own, in NumPy.

    The same sums as the xarray expression (NaN points add zero to both), without its
    alignment and broadcasting, which cost about a second per call on a 23-variable wave
    dataset; ``None`` where that shortcut does not apply (other latitudes, lazy arrays).
    """
    if (weights.dims != ("lat",) or not set(SPATIAL_DIMS) <= set(v.dims)
            or not isinstance(v.variable._data, np.ndarray)
            or not weights.indexes["lat"].equals(v.indexes["lat"])):
        return None
    rest = [d for d in v.dims if d not in SPATIAL_DIMS]
    a = v.transpose(*rest, *SPATIAL_DIMS).values
    w = weights.values[:, None]
    valid = ~np.isnan(a)
    num = np.where(valid, a * w, 0.0).sum(axis=(-2, -1))
    den = np.where(valid, w, 0.0).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(den > 0, num / den, np.nan)
    coords = {k: c for k, c in v.coords.items() if set(c.dims) <= set(rest)}
    return xr.DataArray(mean, dims=rest, coords=coords, name=v.name)


def valid_count(forecast: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """Number of grid points where both forecast and truth are finite (spatial dims reduced)."""
    return xr.Dataset(
        {n: (forecast[n].notnull() & truth[n].notnull()).sum(SPATIAL_DIMS)
         for n in _names(forecast)}
    )


def _masked(forecast: xr.Dataset, truth: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Both datasets with NaN wherever either one is NaN (so both skip the same points)."""
    f, t = {}, {}
    for n in _names(forecast):
        ok = forecast[n].notnull() & truth[n].notnull()
        f[n] = forecast[n].where(ok)
        t[n] = truth[n].where(ok)
    return xr.Dataset(f), xr.Dataset(t)


def mse(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    weights: xr.DataArray,
    angles: Collection[str] = (),
) -> xr.Dataset:
    """Area-weighted spatial mean squared error (units: the variable's units squared)."""
    return spatial_mean(error(forecast, truth, angles=angles) ** 2, weights=weights)


def mae(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    weights: xr.DataArray,
    angles: Collection[str] = (),
) -> xr.Dataset:
    """Area-weighted spatial mean absolute error (the variable's units)."""
    return spatial_mean(abs(error(forecast, truth, angles=angles)), weights=weights)


def bias(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    weights: xr.DataArray,
    angles: Collection[str] = (),
) -> xr.Dataset:
    """Area-weighted spatial mean of forecast minus truth (the variable's units)."""
    return spatial_mean(error(forecast, truth, angles=angles), weights=weights)


def acc(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    weights: xr.DataArray,
    climatology: xr.Dataset,
) -> xr.Dataset:
    """Anomaly correlation coefficient per field (uncentred, as in WeatherBench2).

    ``ACC = sum(w f' t') / sqrt(sum(w f'^2) sum(w t'^2))`` with ``f' = f - c`` and
    ``t' = t - c``, over the points where forecast and truth are both finite.

    Args:
        forecast: Forecast fields.
        truth: Verifying fields, same shape.
        weights: Area weights along ``lat``.
        climatology: The climatology at the same valid times (broadcastable to ``truth``).

    Returns:
        Dimensionless ACC in ``[-1, 1]``; NaN where an anomaly is zero everywhere.
    """
    f, t = _masked(forecast, truth)
    fa, ta = f - climatology[_names(f)], t - climatology[_names(t)]
    num = spatial_mean(fa * ta, weights=weights)
    den = (spatial_mean(fa**2, weights=weights) * spatial_mean(ta**2, weights=weights)) ** 0.5
    return num / den.where(den > 0)


def pearson(forecast: xr.Dataset, truth: xr.Dataset, *, weights: xr.DataArray) -> xr.Dataset:
    """Area-weighted Pearson correlation over space, per field (dimensionless)."""
    f, t = _masked(forecast, truth)
    fa = f - spatial_mean(f, weights=weights)
    ta = t - spatial_mean(t, weights=weights)
    num = spatial_mean(fa * ta, weights=weights)
    den = (spatial_mean(fa**2, weights=weights) * spatial_mean(ta**2, weights=weights)) ** 0.5
    return num / den.where(den > 0)


def ensemble_mean(forecast: xr.Dataset, *, angles: Collection[str] = ()) -> xr.Dataset:
    """Mean over the ``member`` dimension (circular mean for directions)."""
    out = {}
    for n in _names(forecast):
        v = forecast[n]
        out[n] = circular_mean(v, MEMBER_DIM) if n in angles else v.mean(MEMBER_DIM)
    return xr.Dataset(out)


def ensemble_variance(
    forecast: xr.Dataset, *, weights: xr.DataArray, angles: Collection[str] = ()
) -> xr.Dataset:
    """Area-weighted spatial mean of the unbiased (``ddof=1``) ensemble variance.

    For directions the deviations from the circular ensemble mean are circular differences.
    """
    m = forecast.sizes[MEMBER_DIM]
    mean = ensemble_mean(forecast, angles=angles)
    var = {}
    for n in _names(forecast):
        f = forecast[n]
        dev = circular_difference(f, mean[n]) if n in angles else f - mean[n]
        var[n] = (dev**2).sum(MEMBER_DIM, skipna=False) / max(m - 1, 1)
    return spatial_mean(xr.Dataset(var), weights=weights)


def _mean_abs_pairwise(v: np.ndarray, angle: bool) -> np.ndarray:
    """``sum_{i != j} |x_i - x_j| / (M (M - 1))`` along axis 0 (the members)."""
    m = v.shape[0]
    if m < 2:
        return np.zeros(v.shape[1:], dtype=np.float64)
    if angle:
        total = np.zeros(v.shape[1:], dtype=np.float64)
        for i in range(m):
            d = (v[i] - v[i + 1 :] + 180.0) % 360.0 - 180.0
            total += 2.0 * np.abs(d).sum(axis=0)
        return total / (m * (m - 1))
    s = np.sort(v, axis=0)
    k = np.arange(1, m + 1, dtype=np.float64).reshape((m,) + (1,) * (v.ndim - 1))
    # sum_{i,j} |x_i - x_j| = 2 sum_k (2k - M - 1) x_(k) for sorted x.
    weighted: np.ndarray = ((2.0 * k - m - 1.0) * s).sum(axis=0)
    return 2.0 * weighted / (m * (m - 1))


def crps(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    weights: xr.DataArray,
    angles: Collection[str] = (),
) -> xr.Dataset:
    """Area-weighted spatial mean of the fair ensemble CRPS (WeatherBench2's estimator).

    ``CRPS = E|X - y| - 0.5 E|X - X'|`` where the second expectation runs over pairs of
    distinct members (divided by ``M (M - 1)``), so that the score is unbiased for a finite
    ensemble. The ensemble is the ``member`` dimension; a member set with a NaN at a point skips
    that point. Units: the variable's units.
    """
    out = {}
    for n in _names(forecast):
        f = forecast[n].transpose(MEMBER_DIM, ...)
        t = truth[n]
        is_angle = n in angles
        d = circular_difference(f, t) if is_angle else f - t
        skill = abs(d).mean(MEMBER_DIM, skipna=False)
        spread = xr.DataArray(
            _mean_abs_pairwise(np.asarray(f.values, dtype=np.float64), is_angle),
            dims=f.dims[1:],
            coords={k: c for k, c in f.coords.items() if MEMBER_DIM not in c.dims},
        )
        out[n] = skill - 0.5 * spread
    return spatial_mean(xr.Dataset(out), weights=weights)
