"""Fixtures for publishing: packaged smoke models of every variant and a basic-auth server.

The per-variant packages are the session's ``packaged_models`` (trained, evaluated and
packaged once, shared with the packaging tests); two more medium-res packages trained with
other learning rates give the gate a worse and a better challenger.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aurora_mlops.variants import VARIANTS

#: Admin password of the basic-auth server; tests check it never leaks.
ADMIN_PASSWORD = "Adm1n-Pa55-never-shown"
#: Tiny smoke budget: the packages only need distinct checkpoints and a val_score.
BUDGET = {"epochs": 1, "steps_per_epoch": 2}


@pytest.fixture(scope="session")
def package_factory(
    synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Path]:
    """``package_factory(variant, learning_rate=None)`` -> a packaged smoke model (cached)."""
    from aurora_mlops.packaging import package_model
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    root = tmp_path_factory.mktemp("packages")
    cache: dict[tuple[str, float | None], Path] = {}

    def build(variant: str, learning_rate: float | None = None) -> Path:
        key = (variant, learning_rate)
        if key not in cache:
            tag = f"{variant}-{learning_rate or 'default'}"
            params = dict(BUDGET)
            if learning_rate is not None:
                params["learning_rate"] = learning_rate  # type: ignore[assignment]
            train_trial(
                variant=get_variant(variant), data=synthetic_data(variant),
                output_dir=root / f"trial-{tag}", params=resolve_params("smoke", params),
                profile="smoke", tracking=False, stdout=io.StringIO(),
            )
            out = root / f"pkg-{tag}"
            package_model(root / f"trial-{tag}", variant=variant, out=out)
            cache[key] = out
        return cache[key]

    return build


@pytest.fixture(scope="session")
def packages(packaged_models: dict[str, dict[str, Path]]) -> dict[str, Path]:
    """One packaged (and evaluated) smoke model per variant."""
    return {v: packaged_models[v]["package"] for v in VARIANTS}


@pytest.fixture(scope="session")
def ranked_medium_res(
    packages: dict[str, Path], package_factory: Callable[..., Path]
) -> list[Path]:
    """Three medium-res packages, best (lowest val_score) first."""
    from aurora_mlops.packaging import read_package

    pkgs = [packages["medium-res"], *(package_factory("medium-res", lr) for lr in (1e-3, 3e-4))]
    scores = [read_package(p).val_score for p in pkgs]
    assert len(set(scores)) == 3, f"the three smoke trials tied: {scores}"
    return [p for _, p in sorted(zip(scores, pkgs, strict=True))]


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A basic-auth ``mlflow server``: admin ``admin``, users without a grant get nothing."""
    from _servers import start_mlflow_server

    server = start_mlflow_server(
        tmp_path_factory.mktemp("mlflow-auth"), auth=True, admin_password=ADMIN_PASSWORD,
        default_permission="NO_PERMISSIONS",
    )
    try:
        yield server
    finally:
        server.stop()
