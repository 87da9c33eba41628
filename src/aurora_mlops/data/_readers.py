"""Readers: open what users really have and map it onto the canonical layout.

One name for the three steps, each in its own module: opening files, Zarr stores and object
storage (:mod:`._open`, :mod:`._remote`), mapping a foreign layout onto the canonical one
(:mod:`._canonical`, with lazy unit conversion in :mod:`._lazy` and curvilinear regridding in
:mod:`._regrid`), and writing (:mod:`._write`).
"""

from __future__ import annotations

from aurora_mlops.data._canonical import Regrid, to_canonical
from aurora_mlops.data._open import open_dataset
from aurora_mlops.data._write import write_dataset

__all__ = ["Regrid", "open_dataset", "to_canonical", "write_dataset"]
