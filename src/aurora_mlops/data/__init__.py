"""Datasets: the canonical layout, readers, the synthetic generator, validation, batches.

Readers open what users really have and map it onto the canonical layout, in three steps of
their own modules: opening files, Zarr stores and object storage (:mod:`._open`,
:mod:`._remote`), mapping a foreign layout onto the canonical one (:mod:`._canonical`, with
lazy unit conversion in :mod:`._lazy` and curvilinear regridding in :mod:`._regrid`), and
writing (:mod:`._write`).

``import aurora_mlops.data`` stays cheap: the names under ``TYPE_CHECKING`` are imported on
first use (:mod:`aurora_mlops._lazy`), so xarray and torch load only when they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aurora_mlops._lazy import lazy_exports
from aurora_mlops.data._layout import ATMOS_DIMS, DIMS, LAYOUT_TAG, STATIC_DIMS, SURF_DIMS

if TYPE_CHECKING:
    from aurora_mlops.data._canonical import to_canonical
    from aurora_mlops.data._open import open_dataset
    from aurora_mlops.data._remote import is_remote, open_remote
    from aurora_mlops.data._stats import NormStats, compute_stats, stream_stats
    from aurora_mlops.data._stats_cache import SplitStats, cached_split_stats
    from aurora_mlops.data._validate import ValidationReport, validate
    from aurora_mlops.data._windows import Splits, WindowDataset, split_times, stack_windows
    from aurora_mlops.data._write import write_dataset
    from aurora_mlops.data.synth import SynthDrift, synthesize

__getattr__, __dir__, __all__ = lazy_exports(__name__)
