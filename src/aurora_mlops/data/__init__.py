"""Datasets: the canonical layout, readers, the synthetic generator, validation, batches.

Public names are re-exported lazily so that ``import aurora_mlops.data`` stays cheap: torch is
imported only by the batch-window code, and only when it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from aurora_mlops.data._layout import ATMOS_DIMS, DIMS, LAYOUT_TAG, STATIC_DIMS, SURF_DIMS

__all__ = [
    "ATMOS_DIMS",
    "DIMS",
    "LAYOUT_TAG",
    "STATIC_DIMS",
    "SURF_DIMS",
    "NormStats",
    "Splits",
    "ValidationReport",
    "WindowDataset",
    "compute_stats",
    "open_dataset",
    "split_times",
    "synthesize",
    "to_canonical",
    "validate",
    "write_dataset",
]

_LAZY = {
    "open_dataset": "aurora_mlops.data._readers",
    "to_canonical": "aurora_mlops.data._readers",
    "write_dataset": "aurora_mlops.data._readers",
    "synthesize": "aurora_mlops.data._synth",
    "validate": "aurora_mlops.data._validate",
    "ValidationReport": "aurora_mlops.data._validate",
    "NormStats": "aurora_mlops.data._windows",
    "Splits": "aurora_mlops.data._windows",
    "WindowDataset": "aurora_mlops.data._windows",
    "compute_stats": "aurora_mlops.data._windows",
    "split_times": "aurora_mlops.data._windows",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aurora_mlops.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
