"""Lazy element-wise and regridding views of variables, through xarray's backend interface.

Both views are :class:`xarray.backends.BackendArray` subclasses indexed through
``explicit_indexing_adapter`` and wrapped in ``LazilyIndexedArray``: the contract that xarray
documents for backends ("How to add a new backend", lazy loading). Nothing here reaches into
xarray's undocumented internals (``Variable._data``, ``Variable._in_memory``, the CF coders'
``lazy_elemwise_func``): a variable is re-indexed through its public ``__getitem__`` and read
with ``.values``, so each read loads only the requested piece of the source.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

__all__ = ["AffineArray", "NearestArray", "lazy_affine", "lazy_variable"]


def lazy_variable(dims: Sequence[Hashable], array: BackendArray,
                  attrs: dict[str, Any]) -> xr.Variable:
    """A variable whose values are read from ``array`` only when indexed."""
    return xr.Variable(tuple(dims), indexing.LazilyIndexedArray(array), attrs)


class AffineArray(BackendArray):
    """``source * scale + offset`` as ``float32``, computed on each piece when it is read."""

    def __init__(self, source: xr.Variable, scale: float, offset: float) -> None:
        self.source = source
        self.scale, self.offset = scale, offset
        self.shape = tuple(source.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._raw
        )

    def _raw(self, key: tuple[Any, ...]) -> np.ndarray:
        # Variable indexing is orthogonal (outer), as the adapter asks for.
        piece = np.asarray(self.source[key].values)
        if self.scale == 1.0 and self.offset == 0.0:
            return piece.astype(np.float32)
        return (piece.astype(np.float64) * self.scale + self.offset).astype(np.float32)


def lazy_affine(
    var: xr.Variable, scale: float, offset: float, attrs: dict[str, Any]
) -> xr.Variable:
    """``var * scale + offset`` cast to float32 for floats, applied when the data is read.

    Variables that need neither (integers, ``float32`` without a conversion) keep their own
    lazy data; only the attributes change.
    """
    is_float = np.issubdtype(var.dtype, np.floating)
    identity = scale == 1.0 and offset == 0.0
    if identity and (not is_float or var.dtype == np.float32):
        out = var.copy(deep=False)
        out.attrs = attrs
        return out
    return lazy_variable(var.dims, AffineArray(var, scale, offset), attrs)


class NearestArray(BackendArray):
    """A lazy nearest-neighbour view of a curvilinear field on a regular grid.

    Shape is ``(*lead, nlat, nlon)``; each read loads only the bounding box of the source
    cells that the requested target cells need.
    """

    def __init__(self, source: xr.Variable, iy: np.ndarray, ix: np.ndarray,
                 mask: np.ndarray) -> None:
        self.source = source  # dims (*lead, y, x), lazy
        self.iy, self.ix, self.mask = iy, ix, mask
        self.shape = (*source.shape[:-2], *iy.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._raw
        )

    def _raw(self, key: tuple[Any, ...]) -> np.ndarray:
        lead, (klat, klon) = key[:-2], key[-2:]
        iy, ix, mask = self.iy[klat, klon], self.ix[klat, klon], self.mask[klat, klon]
        lead_shape = tuple(
            len(range(*k.indices(n))) for k, n in zip(lead, self.shape[:-2], strict=True)
            if isinstance(k, slice)
        )
        out = np.full((*lead_shape, *np.shape(iy)), np.nan, dtype=np.float32)
        if np.any(mask):
            y0, y1 = int(iy[mask].min()), int(iy[mask].max()) + 1
            x0, x1 = int(ix[mask].min()), int(ix[mask].max()) + 1
            block = np.asarray(self.source[(*lead, slice(y0, y1), slice(x0, x1))].values)
            picked = block[..., iy - y0, ix - x0].astype(np.float32)
            out[...] = np.where(mask, picked, np.nan)
        return out
