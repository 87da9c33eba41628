"""A tiny forecaster whose target depends on one input field only, with the hooks
``aurora.rollout`` calls, so that an explanation has a known right answer."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import torch


class OneInputModel(torch.nn.Module):
    """Predicts every surface variable as persistence, except ``target`` which is
    ``gain * source`` (both surface variables, newest history step) on the latitude rows
    ``rows`` (all by default) and zero elsewhere; atmospheric variables persist.
    ``aurora.rollout`` needs the attributes below."""

    patch_size = 1
    variable_lead_time = False
    timestep = timedelta(hours=6)

    def __init__(self, target: str, source: str, gain: float = 2.0,
                 rows: slice = slice(None)) -> None:
        super().__init__()
        self.target, self.source, self.rows = target, source, rows
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def batch_transform_hook(self, batch: Any) -> Any:
        return batch

    def apply_rollout_input_clipping(self, batch: Any) -> Any:
        return batch

    def set_noise_accumulation(self, n: int) -> None:
        del n

    def forward(self, batch: Any, lead_times: Any = None) -> Any:
        del lead_times
        surf = {k: v[:, -1:] for k, v in batch.surf_vars.items()}
        mask = torch.zeros(batch.surf_vars[self.source].shape[-2:])
        mask[self.rows] = 1.0
        surf[self.target] = self.gain * batch.surf_vars[self.source][:, -1:] * mask
        atmos = {k: v[:, -1:] for k, v in batch.atmos_vars.items()}
        meta = dataclasses.replace(batch.metadata, time=tuple(
            t + self.timestep for t in batch.metadata.time), rollout_step=1)
        return dataclasses.replace(batch, surf_vars=surf, atmos_vars=atmos, metadata=meta)
