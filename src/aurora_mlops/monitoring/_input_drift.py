"""Input drift: each variable's distribution in a window against the training split's.

The statistic is the Wasserstein-1 distance between the window's values and the training
split's, per variable and pressure level, in units of the training split's standard deviation
(how far, on average, the window's quantiles moved, in standard deviations). Why this and not
a hypothesis test: a window holds 10^4 to 10^8 grid values that are strongly correlated in
space and time, so a Kolmogorov-Smirnov or chi-squared p-value rejects for any shift, however
small; an effect size with a fixed threshold does not depend on the grid's resolution. The
population stability index over the training split's deciles is reported beside it (the
number many teams already read), but does not raise the alarm: it saturates on tails.

Why no drift library: Evidently's own default for a numerical column of over 1000 values is
this very statistic, W1 normed by the reference's standard deviation (evidentlyai/evidently
``src/evidently/legacy/calculations/stattests/registry.py``, ``_get_default_stattest``;
threshold 0.1 in ``wasserstein_distance_norm.py``), but it, NannyML and alibi-detect take
tabular columns: a gridded field would become 10^5-10^8 rows per window, and the training
split would be re-read every night. numpy's quantiles give the same number from a stored
profile, and the threshold is ours, measured on quiet windows.

The training split is summarised once (:class:`ReferenceProfile`: mean, standard deviation and
quantiles per variable and level), so a window is compared without reading the training data
again; W1 between two distributions is the mean absolute difference of their quantile
functions, which the stored quantiles give directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops._io import write_json
from aurora_mlops.errors import ConfigError, DataError

__all__ = ["DEFAULT_DRIFT_THRESHOLD", "DRIFT_COLUMNS", "ReferenceProfile", "input_drift"]

#: Alarm when a variable's W1 distance exceeds this many training standard deviations. Quiet
#: synthetic daily windows (bench/bench_monitor.py: 12 seeds x 28 days after the four training
#: weeks) reach at most 0.14, so 0.2 leaves a margin: none of those 336 windows alarmed. A
#: warming of 1 K/day alarms (on t) in the fourth daily window after it starts, 2 K/day in the
#: third.
DEFAULT_DRIFT_THRESHOLD = 0.2
#: Quantile levels stored per variable (midpoints of 200 equal-probability bins).
_QUANTILES = (np.arange(200) + 0.5) / 200
#: At most this many values per variable and level are read from the training split.
_MAX_VALUES = 4_000_000
#: Columns of the drift table (one row per variable and level; ``level`` is NaN at the surface).
DRIFT_COLUMNS = ("variable", "level", "wasserstein_sd", "psi", "mean_shift_sd", "alarm")


@dataclass(frozen=True)
class ReferenceProfile:
    """The training split's distribution of each variable and level.

    Attributes:
        source: Where it came from (the dataset and the time range of its training split).
        stats: ``{"VAR" or "VAR@LEVEL": {"mean", "std", "quantiles"}}`` in the variable's units.
    """

    source: str
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, *, variables: list[str], source: str
                     ) -> ReferenceProfile:
        """Summarise ``ds`` (pass the training split) for ``variables`` (dataset names)."""
        stats: dict[str, dict[str, Any]] = {}
        for key, values in _columns(ds, variables, _MAX_VALUES):
            std = float(values.std())
            if not np.isfinite(std) or std == 0.0:
                continue  # a constant field cannot drift in units of its spread
            stats[key] = {"mean": float(values.mean()), "std": std,
                          "quantiles": np.quantile(values, _QUANTILES).tolist()}
        if not stats:
            raise DataError(f"{source}: no variable with spread to build a drift reference from")
        return cls(source=source, stats=stats)

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON."""
        return write_json(Path(path), {"source": self.source, "stats": self.stats})

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`.

        Raises:
            ConfigError: The file is not a profile.
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(source=str(doc["source"]), stats=dict(doc["stats"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}: not a drift reference profile ({e}); delete it to "
                              "rebuild it from the reference dataset") from e


def _columns(ds: xr.Dataset, variables: list[str], max_values: int
             ) -> list[tuple[str, np.ndarray]]:
    """``(key, finite values)`` per variable and level, times thinned to ``max_values``."""
    out = []
    for name in variables:
        if name not in ds or "time" not in ds[name].dims:
            continue
        da = ds[name]
        per_time = int(np.prod([n for d, n in da.sizes.items() if d not in ("time", "level")]))
        stride = max(1, int(np.ceil(da.sizes["time"] * per_time / max_values)))
        da = da.isel(time=slice(None, None, stride))
        levels = [None] if "level" not in da.dims else [int(v) for v in da["level"].values]
        for lv in levels:
            arr = np.asarray((da if lv is None else da.sel(level=lv)).values, dtype=np.float64)
            arr = arr[np.isfinite(arr)]
            if arr.size:
                out.append((name if lv is None else f"{name}@{lv}", arr))
    return out


def _psi(ref_q: np.ndarray, values: np.ndarray) -> float:
    """Population stability index over the reference's deciles (0: the same shares)."""
    edges = ref_q[[19, 39, 59, 79, 99, 119, 139, 159, 179]]  # 10 %, 20 %, ... quantiles
    counts = np.bincount(np.searchsorted(edges, values), minlength=10)
    share = np.clip(counts / max(values.size, 1), 1e-4, None)
    return float(np.sum((share - 0.1) * np.log(share / 0.1)))


def input_drift(window: xr.Dataset, profile: ReferenceProfile, *,
                threshold: float = DEFAULT_DRIFT_THRESHOLD) -> pd.DataFrame:
    """The drift of every variable and level of ``window`` that ``profile`` knows.

    Returns:
        One row per variable and level (:data:`DRIFT_COLUMNS`): ``wasserstein_sd`` (W1 over
        the training standard deviation), ``psi``, ``mean_shift_sd`` (signed) and ``alarm``
        (``wasserstein_sd > threshold``).

    Raises:
        DataError: The window shares no variable with the profile.
    """
    names = sorted({k.split("@")[0] for k in profile.stats})
    rows = []
    for key, values in _columns(window, names, _MAX_VALUES):
        ref = profile.stats.get(key)
        if ref is None:
            continue
        ref_q = np.asarray(ref["quantiles"])
        w1 = float(np.mean(np.abs(np.quantile(values, _QUANTILES) - ref_q))) / ref["std"]
        name, _, lv = key.partition("@")
        rows.append({"variable": name, "level": float(lv) if lv else np.nan,
                     "wasserstein_sd": w1, "psi": _psi(ref_q, values),
                     "mean_shift_sd": (float(values.mean()) - ref["mean"]) / ref["std"],
                     "alarm": bool(w1 > threshold)})
    if not rows:
        raise DataError(f"the window shares no variable with the drift reference "
                        f"({profile.source})")
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))
