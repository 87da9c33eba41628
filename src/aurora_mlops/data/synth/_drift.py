"""A drift to lay over a synthetic dataset, for monitoring demos and tests.

``warming``: from ``start`` on, the 2 m temperature and the temperature at every pressure level
rise linearly by ``rate`` kelvin per day (a regime change the champion never saw in training:
persistence follows it, a model that learnt the old climate is pulled back towards it). Before
``start`` the data are exactly those without drift, so quiet windows stay quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aurora_mlops.errors import ConfigError

__all__ = ["DRIFT_KINDS", "SynthDrift", "apply_drift"]

#: Which fields each drift kind moves (dataset names).
DRIFT_KINDS: dict[str, tuple[str, ...]] = {"warming": ("2t", "t")}


@dataclass(frozen=True, kw_only=True)
class SynthDrift:
    """A drift: its kind, when it starts (ISO 8601, UTC) and its rate (units per day)."""

    kind: Literal["warming"] = "warming"
    start: str
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ConfigError(f"drift kind {self.kind!r} is unknown; choose from "
                              f"{', '.join(DRIFT_KINDS)}")
        try:
            pd.Timestamp(self.start)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"drift start {self.start!r} is not an ISO 8601 time") from e
        if not np.isfinite(self.rate):
            raise ConfigError(f"drift rate must be a finite number, got {self.rate}")

    def offsets(self, time: np.ndarray) -> np.ndarray:
        """The offset at each time: 0 before ``start``, then ``rate`` per day elapsed."""
        t0 = np.datetime64(pd.Timestamp(self.start).tz_localize(None), "ns")
        days = (np.asarray(time, dtype="datetime64[ns]") - t0) / np.timedelta64(1, "D")
        return (np.maximum(days, 0.0) * self.rate).astype(np.float32)


def apply_drift(out: dict[str, np.ndarray], time: np.ndarray, drift: SynthDrift) -> None:
    """Add ``drift`` to the generated arrays in ``out`` (time first), in place."""
    offsets = drift.offsets(time)
    for name in DRIFT_KINDS[drift.kind]:
        if name in out:
            arr = out[name]
            arr += offsets.reshape((-1,) + (1,) * (arr.ndim - 1))
