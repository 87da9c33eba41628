"""Packaging: a trained trial as a self-describing MLflow pyfunc model with its model card.

:func:`package_model` writes the package (``aurora-mlops package``); :func:`read_package` reads
what it says about itself; :func:`log_package` uploads it to a tracking server. The pyfunc
(:class:`AuroraForecaster`) builds the model once per process and validates every request
before any model work.

Import cost: cheap; torch, aurora and mlflow are imported by the functions that need them.
"""

from __future__ import annotations

from aurora_mlops.packaging._build import PackageResult, package_model
from aurora_mlops.packaging._contract import PRECISIONS, ModelContract, Precision
from aurora_mlops.packaging._ensemble_cost import benchmark_ensemble, ensemble_cost
from aurora_mlops.packaging._ensemble_eval import (
    BEST_MEMBER,
    EnsembleForecasts,
    ensemble_forecasts,
    ensemble_trials,
)
from aurora_mlops.packaging._info import PackageError, PackageInfo, read_package
from aurora_mlops.packaging._log import LoggedPackage, log_package
from aurora_mlops.packaging._members import Member, ensemble_sha256, select_members
from aurora_mlops.packaging._pyfunc import AuroraForecaster, load_forecaster
from aurora_mlops.packaging._reference import read_initial_state
from aurora_mlops.packaging._requests import (
    ArrayRequest,
    ReferenceRequest,
    RequestError,
    parse_precision,
    parse_request,
)

__all__ = [
    "BEST_MEMBER",
    "PRECISIONS",
    "ArrayRequest",
    "AuroraForecaster",
    "EnsembleForecasts",
    "LoggedPackage",
    "Member",
    "ModelContract",
    "PackageError",
    "PackageInfo",
    "PackageResult",
    "Precision",
    "ReferenceRequest",
    "RequestError",
    "benchmark_ensemble",
    "ensemble_cost",
    "ensemble_forecasts",
    "ensemble_sha256",
    "ensemble_trials",
    "load_forecaster",
    "log_package",
    "package_model",
    "parse_precision",
    "parse_request",
    "read_initial_state",
    "read_package",
    "select_members",
]
