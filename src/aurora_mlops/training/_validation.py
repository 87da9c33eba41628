"""Validation during training: scores over evenly spaced validation windows.

See :mod:`aurora_mlops.training._loss` for the definitions of the scores.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aurora_mlops.errors import TrainingError
from aurora_mlops.training._data import loader_batches
from aurora_mlops.training._loss import ScoreAccumulator
from aurora_mlops.training._params import TrialParams

__all__ = ["REPORTED", "check_validation", "validate"]

#: The validation metrics that a trial prints for Katib (and so must be finite).
REPORTED = ("epoch", "train_loss", "val_rmse", "val_persistence_rmse", "val_event_f1", "val_score")


def check_validation(metrics: dict[str, float], epoch: int) -> None:
    """Fail the trial like a NaN loss when a reported validation metric is not finite.

    Raises:
        TrainingError: ``val_score`` (or another reported metric) is NaN or infinite.
    """
    bad = {k: metrics[k] for k in REPORTED if k in metrics and not math.isfinite(metrics[k])}
    if bad:
        listed = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingError(
            f"validation at epoch {epoch} gave {listed}: the model's predictions on the "
            "validation windows are not finite; lower --learning_rate, set --grad_clip, or "
            "check the validation data with `aurora-mlops data validate`"
        )



def _lead_weights(params: TrialParams, loss_weights: list[float],
                  persistence: list[float]) -> list[float]:
    """The weights val_score gives the leads it scored (see ``val_lead_weighting``)."""
    # Unset: the evaluation's leads weighed alike, else the training loss's weights.
    how = params.val_lead_weighting or ("equal" if params.val_lead_steps is not None else None)
    if how is None:
        return loss_weights
    if how == "persistence" and all(p > 0 for p in persistence):
        # Persistence's error does not depend on the model, so the weights are one constant
        # set per validation split: every epoch and trial is scored alike.
        return [1.0 / p for p in persistence]
    return [1.0] * len(persistence)  # "equal", or a split where persistence is exact somewhere


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    val: Any,
    stats: Any,
    weights: torch.Tensor,
    threshold: float,
    lead_weights: list[float],
    device: torch.device,
    params: TrialParams,
    variant: str,
    rollout: Any,
) -> dict[str, float]:
    """Validation scores over evenly spaced validation windows (see ``_loss`` for definitions),
    read through a DataLoader like the training windows."""
    model.eval()
    n = len(val)
    count = min(n, params.val_windows)
    picks = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
    acc = ScoreAccumulator(variant=variant, stats=stats, weights=weights, threshold=threshold)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=params.amp)
    groups = [picks[i : i + params.batch_size] for i in range(0, len(picks), params.batch_size)]
    patch = int(getattr(model, "patch_size", 1))
    for batch, targets in loader_batches(val, groups, params, device, patch):
        with amp:
            preds = list(rollout(model, batch, params.validation_leads()))
        for k, pred in enumerate(preds):
            pred32 = pred.type(torch.float32) if hasattr(pred, "type") else pred
            acc.add(
                k,
                pred32,
                batch,
                {n_: v[:, k] for n_, v in targets["surf"].items()},
                {n_: v[:, k] for n_, v in targets["atmos"].items()},
            )
    rmse = acc.rmse_by_lead()
    pers = acc.persistence_rmse_by_lead()
    lead_weights = _lead_weights(params, lead_weights, pers)
    out = {
        "val_score": acc.score(lead_weights),
        "val_rmse": rmse[0],
        "val_persistence_rmse": pers[0],
        "val_event_f1": acc.f1(),
    }
    for k in range(1, len(rmse)):
        out[f"val_rmse_lead{k + 1}"] = rmse[k]
        out[f"val_persistence_rmse_lead{k + 1}"] = pers[k]
    for name, value in acc.rmse_by_variable().items():
        out[f"val_rmse_{name}"] = value
    for name, value in acc.rmse_by_variable(persistence=True).items():
        out[f"val_persistence_rmse_{name}"] = value
    return out
