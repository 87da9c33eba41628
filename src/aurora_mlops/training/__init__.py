"""Training: one Katib trial (``aurora-mlops train-trial``) and its pieces.

Import cost: this package imports torch; the CLI imports it only for ``train-trial``.
"""

from __future__ import annotations

from aurora_mlops.training._load import TrainedModel, checkpoint_record, load_trained
from aurora_mlops.training._loss import LossConfig, lat_weights, rollout_loss
from aurora_mlops.training._model import COAST_VAR, build_trial_model, coast_mask
from aurora_mlops.training._params import (
    ARCHITECTURE_KNOBS,
    MODEL_KNOBS,
    PROFILE_DEFAULTS,
    TrialParams,
    parse_param_args,
    resolve_params,
)
from aurora_mlops.training._trainer import TrialResult, train_trial

__all__ = [
    "ARCHITECTURE_KNOBS",
    "COAST_VAR",
    "MODEL_KNOBS",
    "PROFILE_DEFAULTS",
    "LossConfig",
    "TrainedModel",
    "TrialParams",
    "TrialResult",
    "build_trial_model",
    "checkpoint_record",
    "coast_mask",
    "lat_weights",
    "load_trained",
    "parse_param_args",
    "resolve_params",
    "rollout_loss",
    "train_trial",
]
