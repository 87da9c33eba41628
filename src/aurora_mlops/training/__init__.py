"""Training: one Katib trial (``aurora-mlops train-trial``) and its pieces.

Import cost: the trial parameters (``TrialParams``, ``parse_param_args``, ``resolve_params``,
``describe_params`` ...) and the record of a trial to resume (``resume_point``) need only
pydantic; everything else imports torch, and is imported only when first used, so a typo in a
parameter fails before torch is loaded (the names under ``TYPE_CHECKING``, see
:mod:`aurora_mlops._lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aurora_mlops._lazy import lazy_exports
from aurora_mlops.training._params import (
    ARCHITECTURE_KNOBS,
    MODEL_KNOBS,
    PROFILE_DEFAULTS,
    TrialParams,
    describe_params,
    parse_param_args,
    resolve_params,
)
from aurora_mlops.training._resume import (
    RESUMABLE,
    STATE_FILE,
    ResumePoint,
    load_train_state,
    resume_point,
)

if TYPE_CHECKING:
    from aurora_mlops.training._load import TrainedModel, checkpoint_record, load_trained
    from aurora_mlops.training._loss import LossConfig, lat_weights, rollout_loss
    from aurora_mlops.training._model import COAST_VAR, build_trial_model, coast_mask
    from aurora_mlops.training._tracking import tracking_server_problem
    from aurora_mlops.training._trainer import TrialResult, train_trial

__getattr__, __dir__, __all__ = lazy_exports(__name__)
