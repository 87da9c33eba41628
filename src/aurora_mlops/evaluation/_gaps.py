"""Missing analyses: (initialisation, lead) pairs whose field is NaN everywhere.

Real archives miss analyses, so a truth or forecast field that is NaN at every grid point is
skipped (the statistics of that pair are NaN and the period means skip NaN) and counted per
variable and lead. Evaluation fails only when a variable has no valid pair at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.errors import DataError
from aurora_mlops.evaluation._forecast import INIT_DIM, LEAD_DIM

__all__ = ["add_empty_pairs", "check_scored", "lead_text"]


def lead_text(lead: np.timedelta64 | float) -> str:
    """A lead time as people write it: ``+24 h`` (``+1.5 h`` for fractions of an hour)."""
    hours = float(lead) if isinstance(lead, float) else float(lead / np.timedelta64(1, "h"))
    return f"+{hours:g} h"


def add_empty_pairs(
    counts: dict[str, dict[str, int]], valid: xr.Dataset, ok: xr.DataArray
) -> None:
    """Add the pairs of this chunk with no valid point to ``counts[variable][lead_text]``.

    Args:
        counts: Running counts, updated in place.
        valid: Valid-point counts per (init, lead[, level]) for each variable.
        ok: Whether the truth has both times of each (init, lead) pair.
    """
    for n in map(str, valid.data_vars):
        empty = valid[n] == 0
        extra = [d for d in empty.dims if d not in (INIT_DIM, LEAD_DIM)]
        if extra:  # a pair counts once, however many of its levels are empty
            empty = empty.any(extra)
        per_lead = (empty & ok).sum(INIT_DIM)
        for lead, k in zip(per_lead[LEAD_DIM].values, per_lead.values, strict=True):
            if int(k):
                key = lead_text(lead)
                counts.setdefault(n, {})
                counts[n][key] = counts[n].get(key, 0) + int(k)


def check_scored(model: str, variables: list[str], counts: xr.Dataset | None,
                 empty: dict[str, dict[str, int]], inits: np.ndarray) -> None:
    """Fail when a variable of ``model`` has no (init, lead) pair with a valid field.

    Args:
        model: The model's name, for the message.
        variables: The variables it was scored on.
        counts: The number of finite per-pair MSE values, by variable and lead.
        empty: The pairs skipped because a field was NaN everywhere (for the message).
        inits: The model's initialisation times.

    Raises:
        DataError: Names the variable, the leads and the period, and what to do.
    """
    if counts is None or not inits.size:
        return
    for n in variables:
        if n not in counts.data_vars or int(counts[n].sum()) > 0:
            continue
        leads = ", ".join(empty.get(n, {})) or "every lead"
        raise DataError(
            f"{model}: variable {n} is NaN at every grid point in every (initialisation, lead) "
            f"pair ({leads}; initialisations {pd.Timestamp(inits[0]).isoformat()}.."
            f"{pd.Timestamp(inits[-1]).isoformat()}) in the forecast or the truth; fix the file "
            "that produced it or leave the variable out"
        )
