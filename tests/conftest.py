"""Shared fixtures: small canonical datasets built in memory, no network, no weights."""

from __future__ import annotations

import io

# Python's own SQLite before anything lists xarray's engines: that loads cfgrib, whose eccodes
# loads eckitlib's bundled libsqlite3 3.26 with global symbols, and a later `import sqlite3`
# binds to it, which MLflow's SQL store refuses (it needs 3.31 or newer).
import sqlite3  # noqa: F401
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

# pytest-xdist's scheduling for `make test` (-n 2): the tests that share an expensive fixture
# run on one worker, and each worker gets its share of the cores.
from _xdist import (  # noqa: F401 (hooks)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
)
from aurora_mlops.data import LAYOUT_TAG, synthesize, write_dataset
from aurora_mlops.variables import VARIABLES
from aurora_mlops.variants import VARIANTS


def make_canonical(
    variant: str = "medium-res",
    *,
    times: int = 8,
    grid: tuple[int, int] = (16, 32),
    levels: tuple[int, ...] | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """A valid canonical dataset: smooth random fields well inside each variable's range."""
    spec = VARIANTS[variant]
    levels = levels or spec.smoke_levels
    rng = np.random.default_rng(seed)
    h, w = grid
    lat = np.linspace(90.0, -90.0, h)
    lon = np.linspace(0.0, 360.0, w, endpoint=False)
    time = pd.date_range("2024-01-01", periods=times, freq=f"{spec.timestep_hours}h")

    def field(var_kind: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
        v = VARIABLES[(var_kind, name)]  # type: ignore[index]
        lo, hi = v.valid_min, v.valid_max
        mid, half = lo + (hi - lo) * 0.5, (hi - lo) * 0.1
        if v.positive:
            mid, half = lo + (hi - lo) * 0.2, (hi - lo) * 0.05
        return (mid + half * rng.uniform(-1, 1, size=shape)).astype(np.float32)

    data: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, str]]] = {}
    for v in spec.variables():
        if v.kind == "surf":
            dims, shape = ("time", "lat", "lon"), (times, h, w)
        elif v.kind == "atmos":
            dims, shape = ("time", "level", "lat", "lon"), (times, len(levels), h, w)
        else:
            dims, shape = ("lat", "lon"), (h, w)
        data[v.store_name] = (
            dims, field(v.kind, v.name, shape), {"units": v.units, "long_name": v.long_name}
        )
    ds = xr.Dataset(
        {k: xr.Variable(d, a, attrs) for k, (d, a, attrs) in data.items()},
        coords={"time": time, "level": np.asarray(levels, dtype=np.int64), "lat": lat, "lon": lon},
        attrs={"layout": LAYOUT_TAG, "variant": variant},
    )
    return ds


@pytest.fixture
def canonical_factory() -> Callable[..., xr.Dataset]:
    """The :func:`make_canonical` factory."""
    return make_canonical


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


#: The short medium-res smoke run that must beat persistence (trained once per session).
SKILL_RUN = {"epochs": 16, "steps_per_epoch": 50, "patience": 16}


@pytest.fixture(scope="session")
def trained_medium_res(
    synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Trial directory of a medium-res smoke run of :data:`SKILL_RUN` on synthetic data."""
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    out = tmp_path_factory.mktemp("trained") / "medium-res"
    train_trial(
        variant=get_variant("medium-res"),
        data=synthetic_data("medium-res"),
        output_dir=out,
        params=resolve_params("smoke", SKILL_RUN),
        profile="smoke",
        tracking=False,
        stdout=io.StringIO(),
    )
    return out


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a real ``mlflow server`` on 127.0.0.1, shared by the whole test session."""
    from _servers import start_mlflow_server

    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def warm_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``python`` whose ``python -m MODULE ...`` processes fork from a warm step server that
    imported torch, aurora and the package once (``aurora_mlops/kfp/_warm_steps.py``), for
    tests that start several short processes of the package, such as torchrun's launcher and
    its workers; each saves ~6 s of imports and is otherwise the process it stands for
    (``tests/kfp/test_warm_steps.py``). The real interpreter if the server did not start."""
    import sys

    from aurora_mlops.kfp._warm_steps import warm_python as start

    with start(tmp_path_factory.mktemp("warm-python") / "steps.log") as python:
        yield python or sys.executable


#: The tiny budget of the smoke models that packaging and publishing tests ship.
PACKAGE_RUN = {"epochs": 1, "steps_per_epoch": 2}
#: Lead steps and initialisations of their evaluation.
PACKAGE_EVAL = ["--lead-steps", "2", "--max-inits", "3"]


@pytest.fixture(scope="session")
def packaged_models(
    synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Path]]:
    """Every variant trained briefly, evaluated and packaged (medium-res also benchmarked).

    Returns ``{variant: {"data", "trial", "eval", "bench" (medium-res only), "package"}}``.
    """
    from aurora_mlops.cli import main
    from aurora_mlops.packaging import package_model
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    root = tmp_path_factory.mktemp("packaged")
    out: dict[str, dict[str, Path]] = {}
    for variant in VARIANTS:
        paths = {"data": synthetic_data(variant), "trial": root / "trials" / variant,
                 "eval": root / "eval" / variant, "package": root / "packages" / variant}
        train_trial(
            variant=get_variant(variant), data=paths["data"], output_dir=paths["trial"],
            params=resolve_params("smoke", PACKAGE_RUN), profile="smoke", tracking=False,
            stdout=io.StringIO(),
        )
        assert main(["evaluate", "--model", str(paths["trial"]), "--data", str(paths["data"]),
                     "--variant", variant, "--out", str(paths["eval"]), *PACKAGE_EVAL]) == 0
        bench = None
        if variant == "medium-res":
            paths["bench"] = bench = root / "bench" / variant
            assert main(["benchmark", "--model", str(paths["trial"]), "--variant", variant,
                         "--out", str(bench), "--repeats", "2", "--train-steps", "1"]) == 0
        package_model(paths["trial"], variant=variant, out=paths["package"],
                      eval_dir=paths["eval"], bench_dir=bench)
        out[variant] = paths
    return out
