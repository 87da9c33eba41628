"""Synthetic datasets for training tests, written once per session per variant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aurora_mlops.data import synthesize, write_dataset


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``synthetic_data(variant, times=None)`` -> path of a synthetic netCDF (cached)."""
    cache: dict[tuple[str, int | None], Path] = {}
    root = tmp_path_factory.mktemp("synthetic")

    def get(variant: str, times: int | None = None) -> Path:
        key = (variant, times)
        if key not in cache:
            ds = synthesize(variant, times=times, seed=1)
            cache[key] = write_dataset(ds, root / f"{variant}-{times}.nc")
        return cache[key]

    return get
