"""Pieces that ``tune analyze``'s page modules share: a figure, a rank-correlation table row.

Cheap to import: matplotlib is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

from aurora_mlops.tuning.analysis._model import RankCorrelation
from aurora_mlops.tuning.analysis._stats import _shown

__all__ = ["_figure", "_rho"]


def _figure(width: float = 7.0, height: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
    return fig


def _rho(c: RankCorrelation) -> list[Any]:
    return [c.low, c.high, c.n, "-" if c.rho is None else f"{c.rho:.2f}", _shown(c.p_value)]
