"""The learning-rate schedule: linear warm-up, then cosine annealing with warm restarts.

Built from ``torch.optim.lr_scheduler``: ``LinearLR`` over the first ``warmup_steps`` optimiser
steps (from ``1 / warmup_steps`` of the peak to the peak), then ``CosineAnnealingWarmRestarts``
with the trial's ``t0`` and ``t_mult``, annealing to :data:`FLOOR` of the peak in each cycle.
The scheduler steps once per optimiser step.
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import (
    CosineAnnealingWarmRestarts,
    LinearLR,
    LRScheduler,
    SequentialLR,
)

from aurora_mlops.training._params import TrialParams

__all__ = ["FLOOR", "make_scheduler"]

#: The lowest learning rate of a cosine cycle, as a fraction of the peak.
FLOOR = 0.01


def make_scheduler(optimizer: torch.optim.Optimizer, params: TrialParams) -> LRScheduler:
    """The trial's schedule for ``optimizer`` (whose learning rate is the peak)."""
    peak = optimizer.param_groups[0]["lr"]
    cosine = CosineAnnealingWarmRestarts(
        optimizer, T_0=params.t0, T_mult=params.t_mult, eta_min=FLOOR * peak
    )
    warmup = params.warmup_steps
    if warmup == 0:
        return cosine
    linear = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0,
                      total_iters=max(warmup - 1, 1))
    return SequentialLR(optimizer, [linear, cosine], milestones=[warmup])
