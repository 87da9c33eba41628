"""Event thresholds (defined once, here) and event classification scores.

An event is "a quantity exceeds a threshold" at one grid point and one valid time. The
quantities are either a variable of :mod:`aurora_mlops.variables` or derived from some:

* ``tp_24h``: precipitation accumulated over the 24 hours ending at the valid time, the sum of
  the step accumulations ``tp`` (forecast: over the leads in ``(lead - 24 h, lead]``, which must
  all be present; truth: over the truth times in ``(valid - 24 h, valid]``);
* ``ws10``: 10 m wind speed ``sqrt(10u**2 + 10v**2)``.

:data:`EVENTS` is the one table of thresholds; :func:`events_for` picks those a variant scores
(:attr:`aurora_mlops.variants.VariantSpec.events`). Scores come from a confusion table summed
over grid points, times and initialisations (unweighted counts, NaN points skipped).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict

from aurora_mlops.variants import get_variant

__all__ = [
    "EVENTS",
    "EventSpec",
    "confusion_counts",
    "derive_quantity",
    "event_scores",
    "events_for",
]

Derivation = Literal["identity", "speed", "accumulate_24h"]


class EventSpec(BaseModel):
    """One event: ``quantity > threshold``.

    Attributes:
        quantity: Name of the scored quantity (an Aurora variable name or a derived name).
        inputs: Aurora variables the quantity is computed from.
        derive: How: ``identity`` (the one input), ``speed`` (norm of two components),
            ``accumulate_24h`` (24 h sum of step accumulations).
        threshold: Event threshold, in ``units``.
        units: Units of the quantity and threshold.
        label: Human-readable description for reports.

    Which variants score an event is a fact of the variant: :attr:`VariantSpec.events`.
    """

    model_config = ConfigDict(frozen=True)

    quantity: str
    inputs: tuple[str, ...]
    derive: Derivation
    threshold: float
    units: str
    label: str


#: The event thresholds, defined once.
EVENTS: tuple[EventSpec, ...] = (
    EventSpec(
        quantity="tp_24h", inputs=("tp",), derive="accumulate_24h", threshold=0.025, units="m",
        label="precipitation > 25 mm/day (24 h accumulation)",
    ),
    EventSpec(
        quantity="ws10", inputs=("10u", "10v"), derive="speed", threshold=15.0, units="m s-1",
        label="10 m wind speed > 15 m/s",
    ),
    EventSpec(
        quantity="pm2p5", inputs=("pm2p5",), derive="identity", threshold=35e-9,
        units="kg m-3", label="PM2.5 > 35 ug/m3 (US EPA 24 h standard)",
    ),
    EventSpec(
        quantity="swh", inputs=("swh",), derive="identity", threshold=4.0, units="m",
        label="significant wave height > 4 m (rough sea)",
    ),
)


def events_for(variant: str) -> list[EventSpec]:
    """The events that ``variant`` scores (:attr:`VariantSpec.events`), in :data:`EVENTS` order."""
    wanted = get_variant(variant).events
    return [e for e in EVENTS if e.quantity in wanted]


def derive_quantity(event: EventSpec, fields: xr.Dataset) -> xr.DataArray:
    """The event quantity from ``fields`` (speed or identity; accumulation is done by caller).

    For ``accumulate_24h`` this returns the step accumulation ``tp`` unchanged: the 24 h sum
    needs the time axis and is built by :mod:`._evaluate`.
    """
    if event.derive == "speed":
        a, b = (fields[n] for n in event.inputs)
        speed: xr.DataArray = (a**2 + b**2) ** 0.5
        return speed
    return fields[event.inputs[0]]


def confusion_counts(
    forecast: xr.DataArray, truth: xr.DataArray, *, threshold: float, dims: tuple[str, ...]
) -> xr.Dataset:
    """Hits, misses, false alarms and correct negatives of ``quantity > threshold``.

    Args:
        forecast: Forecast quantity.
        truth: Verifying quantity, same shape.
        threshold: Event threshold (same units).
        dims: Dimensions to count over (for example ``("time", "lat", "lon")``).

    Returns:
        ``hits``, ``misses``, ``false_alarms``, ``correct_negatives`` (int64) over the points
        where both are finite.
    """
    ok = forecast.notnull() & truth.notnull()
    f = (forecast > threshold) & ok
    t = (truth > threshold) & ok
    return xr.Dataset(
        {
            "hits": (f & t).sum(dims),
            "misses": (~f & t).sum(dims),
            "false_alarms": (f & ~t).sum(dims),
            "correct_negatives": (~f & ~t & ok).sum(dims),
        }
    ).astype(np.int64)


def event_scores(counts: xr.Dataset) -> xr.Dataset:
    """Accuracy, precision, recall, F1 and CSI from a confusion table (NaN where undefined)."""
    h = counts["hits"].astype(np.float64)
    m = counts["misses"].astype(np.float64)
    fa = counts["false_alarms"].astype(np.float64)
    cn = counts["correct_negatives"].astype(np.float64)

    def ratio(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a / b.where(b > 0)

    precision = ratio(h, h + fa)
    recall = ratio(h, h + m)
    return xr.Dataset(
        {
            "accuracy": ratio(h + cn, h + m + fa + cn),
            "precision": precision,
            "recall": recall,
            "f1": ratio(2 * h, 2 * h + m + fa),
            "csi": ratio(h, h + m + fa),
        }
    )
