"""``train-trial``: fine-tune one variant with one set of hyperparameters (one Katib trial).

The trial is a short sequence of steps, each in its own module: build the model with the
trial's knobs (:mod:`._model`), open the data lazily and get the training split's cached
statistics (:mod:`._data`), prepare the model (weights, switches, DDP), run the loop with
validation, Katib metric lines and early stopping (:mod:`._loop`), and write the best weights,
the end state and ``trial.json`` (:mod:`._record`). Runs as one process or under ``torchrun``
(DistributedDataParallel, gloo on the CPU). A trial may continue an earlier one to a larger
budget (``resume_from``, :mod:`._resume`).
"""

from __future__ import annotations

import functools
import inspect
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from aurora_mlops._provenance import git_commit
from aurora_mlops._version import __version__
from aurora_mlops.config import TrackerName, get_settings, katib_context
from aurora_mlops.errors import ConfigError, TrainingError
from aurora_mlops.training._data import TrialData, load_trial_data
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.training._loop import Loop
from aurora_mlops.training._model import (
    COAST_VAR,
    build_trial_model,
    coast_mask,
    modulation_off,
    prepare_model,
)
from aurora_mlops.training._params import TrialParams
from aurora_mlops.training._record import TrialRecord, write_failure
from aurora_mlops.training._resume import checked_point
from aurora_mlops.training._tracking import Tracker, make_tracker
from aurora_mlops.variants import Profile, VariantSpec

__all__ = [
    "COAST_VAR",
    "TrialResult",
    "build_trial_model",
    "coast_mask",
    "modulation_off",
    "train_trial",
]


@dataclass(frozen=True)
class TrialResult:
    """What a finished trial produced."""

    output_dir: Path
    checkpoint: Path
    metrics: dict[str, float]
    trial_json: Path


def _torch_threads(fn: Callable[..., TrialResult]) -> Callable[..., TrialResult]:
    """Run ``fn`` with ``torch.set_num_threads(params.torch_threads)``, restored afterwards."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> TrialResult:
        params = inspect.signature(fn).bind(*args, **kwargs).arguments["params"]
        previous = torch.get_num_threads()
        if params.torch_threads is not None:
            torch.set_num_threads(params.torch_threads)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return run


def _lead_weights(variant: VariantSpec, params: TrialParams) -> list[float]:
    """The per-lead loss weights, after checking the weights the trial gives.

    Raises:
        ConfigError: Too few lead weights, or variable weights for unknown variables.
    """
    lead_weights = list(params.lead_weights or [1.0] * params.rollout_steps)
    if len(lead_weights) < params.rollout_steps:
        raise ConfigError(
            f"--lead_weights has {len(lead_weights)} values but --rollout_steps is "
            f"{params.rollout_steps}: give one weight per lead"
        )
    unknown = sorted(set(params.variable_weights) - set(variant.surf_vars + variant.atmos_vars))
    if unknown:
        raise ConfigError(f"--variable_weights names {unknown}, not variables of {variant.name}")
    return lead_weights


def _start_tracker(
    tracking: bool | TrackerName, uri: str | None, variant: VariantSpec, profile: Profile,
    params: TrialParams, data: str | Path, trial_data: TrialData, resumed_from: Path | None,
) -> Tracker:
    """The trial's runs (MLflow, W&B or both: ``True`` is the settings' choice), started with
    its tags and parameters (none when ``tracking`` is ``False``); a resumed trial's runs log
    only its new epochs and are tagged with where it resumed from."""
    settings = get_settings()
    tracker = make_tracker(settings.tracker if tracking is True else tracking or "mlflow",
                           enabled=tracking is not False,
                           uri=uri or settings.resolved_tracking_uri(),
                           experiment=settings.experiment_name)
    tags = {
        "variant": variant.name,
        "profile": profile,
        "seed": str(params.seed),
        "git_commit": git_commit(),
        "data": str(data),
        "data_split": json.dumps(trial_data.splits.as_dict()),
        "aurora_mlops": __version__,
        **katib_context(),
        **({"resumed_from": str(resumed_from)} if resumed_from is not None else {}),
    }
    tracker.start(
        run_name=katib_context().get("katib.trial", f"{variant.name}-trial"),
        tags=tags,
        parent_run_id=settings.parent_run_id,
    )
    tracker.log_params(params.model_dump())
    return tracker


@_torch_threads
def train_trial(
    *,
    variant: VariantSpec,
    data: str | Path,
    output_dir: str | Path,
    params: TrialParams,
    profile: Profile = "production",
    init: str | Path | None = None,
    tracking: bool | TrackerName = True,
    tracking_uri: str | None = None,
    stdout: TextIO | None = None,
    fail_on_step: Callable[[int], bool] | None = None,
    resume_from: str | Path | None = None,
    save_state: bool | None = None,
) -> TrialResult:
    """Fine-tune ``variant`` on ``data`` with ``params``; write the checkpoint and ``trial.json``.

    Args:
        variant, data: The variant to train, and its dataset (canonical or readable foreign).
        output_dir: The trial's own directory (``model.ckpt``, ``trial.json``, ``norm_stats.json``).
        params: Validated hyperparameters.
        profile: ``smoke`` (CPU-sized model) or ``production`` (the published configuration).
        init: Checkpoint to start from (a path, or ``hub`` for the published weights).
        tracking, tracking_uri: mlflow, wandb, both, True (the settings') or False; MLflow's URI.
        stdout: Where Katib metric lines go (default ``sys.stdout``).
        fail_on_step: Test hook: return True to make that optimiser step's loss NaN.
        resume_from: An earlier trial's folder to continue to ``params.epochs`` (:mod:`._resume`).
        save_state: Write ``train_state.pt`` (what ``resume_from`` reads; 4x the checkpoint's
            size). ``None``: for smoke trials only.

    Raises:
        ConfigError: Bad parameters, or a ``resume_from`` that cannot be continued (before
            any training).
        CheckpointError: ``init`` does not fit the model.
        TrainingError: The loss became NaN or infinite, or a production trial has no CUDA.
    """
    output_dir, t_start = Path(output_dir), time.perf_counter()
    point = None if resume_from is None else checked_point(
        resume_from, variant=variant.name, profile=profile, data=data, params=params, init=init)
    dist = Distributed(require_cuda="production" if profile == "production" else None)
    state = None if point is None else point.load(dist)
    random.seed(params.seed)
    np.random.seed(params.seed)
    torch.manual_seed(params.seed)
    # Everything that can fail on bad input fails before a single step is taken.
    model = build_trial_model(variant, params, profile)
    history = max(int(getattr(model, "max_history_size", 2)), variant.min_history)
    trial_data = load_trial_data(data, variant, params, profile, history, dist)
    lead_weights = _lead_weights(variant, params)
    if params.coastal_conditioning:  # the mask is one more static field
        mask = coast_mask(trial_data.train.static["lsm"])
        trial_data.train.static[COAST_VAR] = trial_data.val.static[COAST_VAR] = mask
    trial_model = prepare_model(model, variant, params, None if point else init, dist)
    tracker = _start_tracker(dist.main and tracking, tracking_uri, variant, profile, params,
                             data, trial_data, None if point is None else point.path)
    if dist.main:
        output_dir.mkdir(parents=True, exist_ok=True)
        trial_data.stats.to_json(output_dir / "norm_stats.json")
    loop = Loop(trial_model, trial_data, params, dist, lead_weights, tracker,
                out=stdout or sys.stdout, fail_on_step=fail_on_step, resume=state)
    record = TrialRecord(variant, profile, params, str(data), trial_data, init, dist, point)
    save_state = profile == "smoke" if save_state is None else save_state
    # A training error leaves failure.json; the tracking run and process group end either way.
    status = "FAILED"
    try:
        result = loop.run()
        # Written before the run ends: after end() MLflow would start a new, untagged run.
        ckpt = output_dir / "model.ckpt"
        if dist.main:
            ckpt = record.write(output_dir, result, time.perf_counter() - t_start, tracker,
                                loop.state() if save_state else None)
        status = "FINISHED"
    except TrainingError as e:
        if dist.main:
            write_failure(output_dir, e, loop.result.history)
        raise
    finally:
        tracker.end(status)
        dist.close()
    metrics = {k: float(v) for k, v in result.best_metrics.items()}
    return TrialResult(output_dir, ckpt, metrics, output_dir / "trial.json")
