"""Datasets: the canonical layout, readers, the synthetic generator, validation, batches.

Public names are re-exported lazily so that ``import aurora_mlops.data`` stays cheap: torch is
imported only by the batch-window code, and only when it is first used.
"""

from __future__ import annotations

from aurora_mlops._lazy import lazy_exports
from aurora_mlops.data._layout import ATMOS_DIMS, DIMS, LAYOUT_TAG, STATIC_DIMS, SURF_DIMS

__all__ = [
    "ATMOS_DIMS",
    "DIMS",
    "LAYOUT_TAG",
    "STATIC_DIMS",
    "SURF_DIMS",
    "NormStats",
    "SplitStats",
    "Splits",
    "SynthDrift",
    "ValidationReport",
    "WindowDataset",
    "cached_split_stats",
    "compute_stats",
    "is_remote",
    "open_dataset",
    "open_remote",
    "split_times",
    "stack_windows",
    "stream_stats",
    "synthesize",
    "to_canonical",
    "validate",
    "write_dataset",
]

_LAZY = {
    "open_dataset": "aurora_mlops.data._readers",
    "is_remote": "aurora_mlops.data._remote",
    "open_remote": "aurora_mlops.data._remote",
    "to_canonical": "aurora_mlops.data._readers",
    "write_dataset": "aurora_mlops.data._readers",
    "synthesize": "aurora_mlops.data.synth",
    "SynthDrift": "aurora_mlops.data.synth",
    "validate": "aurora_mlops.data._validate",
    "ValidationReport": "aurora_mlops.data._validate",
    "NormStats": "aurora_mlops.data._stats",
    "SplitStats": "aurora_mlops.data._stats_cache",
    "cached_split_stats": "aurora_mlops.data._stats_cache",
    "stream_stats": "aurora_mlops.data._stats",
    "stack_windows": "aurora_mlops.data._windows",
    "Splits": "aurora_mlops.data._windows",
    "WindowDataset": "aurora_mlops.data._windows",
    "compute_stats": "aurora_mlops.data._stats",
    "split_times": "aurora_mlops.data._windows",
}


__getattr__ = lazy_exports(__name__, _LAZY)
