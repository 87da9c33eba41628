"""aurora-mlops: tune, judge and ship Microsoft's Aurora weather foundation model.

Importing the package is cheap (no torch, aurora or mlflow): heavy modules are imported by the
functions that need them.
"""

from __future__ import annotations

from aurora_mlops._version import __version__
from aurora_mlops.errors import (
    AuroraMLOpsError,
    CheckpointError,
    ConfigError,
    DataError,
    DataFileError,
    TrainingError,
    ValidationFailed,
)
from aurora_mlops.variants import VARIANTS, VariantSpec, build_model, get_variant, load_weights

__all__ = [
    "VARIANTS",
    "AuroraMLOpsError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DataFileError",
    "TrainingError",
    "ValidationFailed",
    "VariantSpec",
    "__version__",
    "build_model",
    "get_variant",
    "load_weights",
]
