"""Captum attributions of one forecast quantity to a window's inputs.

Captum attributes an output to input *tensors*; an Aurora model takes an ``aurora.Batch`` and
rolls out. :class:`TargetForecast` is the bridge: it takes one tensor per input field (each
surface variable, each pressure level of each atmospheric variable, each static field),
rebuilds the batch, rolls the model out to the target's lead with ``aurora.rollout`` (the
roll-out ``evaluate`` scores) and returns the target field. Three attributions use it:

* occlusion of each input field (Captum ``FeatureAblation``, one feature per input tensor):
  the field is replaced by its own mean over the window, and the score is the RMS change
  (latitude-weighted, in the target's units) of the forecast target;
* occlusion of regions (``FeatureAblation`` with one feature mask shared by every input
  tensor): a tile or a latitude band of *all* inputs at once is replaced by their means;
* gradient saliency (Captum ``Saliency``) of the latitude-weighted mean of the target: the
  sensitivity of each input field, ``sum |d target / d x| * std(x)``, and its map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from aurora_mlops.errors import ConfigError
from aurora_mlops.explain._target import ExplainTarget

if TYPE_CHECKING:
    import torch
    from aurora import Batch

__all__ = ["METHODS", "Method", "TargetForecast", "WindowAttribution", "attribute_window",
           "input_fields", "require_captum"]

Method = Literal["occlusion", "saliency", "both"]
#: The ``--method`` choices.
METHODS: tuple[Method, ...] = ("occlusion", "saliency", "both")


def require_captum() -> None:
    """Import Captum, or say in one sentence which extra installs it."""
    try:
        import captum  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            "explain needs Captum, which is not installed: pip install 'aurora-mlops[explain]'"
        ) from e


def input_fields(batch: Batch) -> tuple[list[str], list[torch.Tensor]]:
    """The batch's input fields, one tensor each: surface ``(b, t, h, w)`` named ``2t``,
    each atmospheric level ``(b, t, h, w)`` named ``z@500``, static ``(1, h, w)`` named
    ``lsm (static)``."""
    names: list[str] = []
    tensors: list[torch.Tensor] = []
    for name, x in batch.surf_vars.items():
        names.append(name)
        tensors.append(x)
    for name, x in batch.atmos_vars.items():
        for i, level in enumerate(batch.metadata.atmos_levels):
            names.append(f"{name}@{int(level)}")
            tensors.append(x[:, :, i])
    for name, x in batch.static_vars.items():
        names.append(f"{name} (static)")
        tensors.append(x[None])
    return names, [t.detach().float().contiguous() for t in tensors]


class TargetForecast:
    """``forward(*fields) -> (b, h, w)``: the model's forecast of ``target`` from the fields
    of :func:`input_fields` (the template batch gives the metadata and the fields' order)."""

    def __init__(self, model: Any, template: Batch, target: ExplainTarget) -> None:
        self.model = model
        self.template = template
        self.target = target
        self.n_surf = len(template.surf_vars)
        self.n_levels = len(template.metadata.atmos_levels)
        self.n_atmos = len(template.atmos_vars) * self.n_levels

    def batch(self, fields: Sequence[torch.Tensor]) -> Batch:
        """The ``aurora.Batch`` that ``fields`` stand for."""
        import torch

        t = self.template
        surf = dict(zip(t.surf_vars, fields[: self.n_surf], strict=True))
        atmos_fields = fields[self.n_surf : self.n_surf + self.n_atmos]
        atmos = {
            name: torch.stack(list(atmos_fields[k * self.n_levels : (k + 1) * self.n_levels]),
                              dim=2)
            for k, name in enumerate(t.atmos_vars)
        }
        static = {name: x[0] for name, x in
                  zip(t.static_vars, fields[self.n_surf + self.n_atmos :], strict=True)}
        return dataclasses.replace(t, surf_vars=surf, atmos_vars=atmos, static_vars=static)

    def __call__(self, *fields: torch.Tensor) -> torch.Tensor:
        from aurora.rollout import rollout

        pred = None
        for pred in rollout(self.model, self.batch(fields), self.target.lead):  # noqa: B007
            pass
        assert pred is not None  # lead >= 1 (ExplainTarget)
        if self.target.level is None:
            return pred.surf_vars[self.target.variable][:, 0]
        levels = [int(x) for x in pred.metadata.atmos_levels]
        return pred.atmos_vars[self.target.variable][:, 0, levels.index(self.target.level)]


@dataclass(frozen=True)
class WindowAttribution:
    """One window's attributions; ``None`` where a method did not run.

    Attributes:
        names: The input fields (see :func:`input_fields`).
        occlusion: RMS change of the target (its units) when each field is occluded.
        saliency: ``sum |gradient| * std`` of each field (target units).
        saliency_maps: Per field, ``|gradient| * std`` summed over history ``(h, w)``.
        region_map: RMS change when the tile holding each point is occluded ``(h, w)``.
        bands: RMS change when each latitude band (north to south) is occluded.
    """

    names: list[str]
    occlusion: np.ndarray | None
    saliency: np.ndarray | None
    saliency_maps: np.ndarray | None
    region_map: np.ndarray | None
    bands: np.ndarray | None


def _weights(lat: torch.Tensor, rows: int) -> torch.Tensor:
    import torch

    w = torch.cos(torch.deg2rad(lat[:rows].float())).clamp(min=0.0)
    return (w / w.sum().clamp(min=1e-12))[:, None]


def _tile_masks(fields: Sequence[torch.Tensor], tiles: tuple[int, int]) -> tuple[Any, ...]:
    """One feature mask per field giving every point the id of its tile (row-major)."""
    import torch

    h, w = fields[0].shape[-2:]
    rows, cols = tiles
    ids = torch.zeros((h, w), dtype=torch.long)
    for i, r in enumerate(np.array_split(np.arange(h), rows)):
        for j, c in enumerate(np.array_split(np.arange(w), cols)):
            ids[int(r[0]) : int(r[-1]) + 1, int(c[0]) : int(c[-1]) + 1] = i * cols + j
    return tuple(ids.reshape((1,) * (f.dim() - 2) + (h, w)) for f in fields)


def attribute_window(
    model: Any, batch: Batch, target: ExplainTarget, *, method: Method = "both",
    tiles: tuple[int, int] = (4, 8),
) -> WindowAttribution:
    """Captum's attributions of ``target`` to the fields of one window ``batch`` (size 1)."""
    import torch

    names, fields = input_fields(batch)
    forecast = TargetForecast(model, batch, target)
    with torch.no_grad():
        reference = forecast(*fields).detach()
    weights = _weights(batch.metadata.lat, reference.shape[-2])
    finite = torch.isfinite(reference)
    occlusion = region = bands = saliency = maps = None
    if method in ("occlusion", "both"):
        occlusion, region, bands = _occlusion(forecast, fields, reference, weights, tiles)
    if method in ("saliency", "both"):
        saliency, maps = _saliency(forecast, fields, weights, finite)
    return WindowAttribution(names=names, occlusion=occlusion, saliency=saliency,
                             saliency_maps=maps, region_map=region, bands=bands)


def _occlusion(
    forecast: TargetForecast, fields: list[torch.Tensor], reference: torch.Tensor,
    weights: torch.Tensor, tiles: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-field occlusion, the tile map and the latitude bands (RMS change of the target)."""
    import torch
    from captum.attr import FeatureAblation

    def change(*x: torch.Tensor) -> torch.Tensor:
        diff = torch.nan_to_num(forecast(*x) - reference)
        return torch.sqrt((diff**2 * weights).sum(dim=-2).mean(dim=-1))

    ablation = FeatureAblation(change)
    inputs = tuple(fields)
    means = tuple(float(torch.nanmean(f)) for f in fields)
    per_field = tuple(torch.full((1,) * f.dim(), k, dtype=torch.long)
                      for k, f in enumerate(fields))
    with torch.no_grad():
        attr = ablation.attribute(inputs, baselines=means, feature_mask=per_field)
        # Captum's attribution is f(x) - f(occluded) = 0 - change: the change is its negative.
        occlusion = np.abs([float(a.flatten()[0]) for a in attr])
        tile_attr = ablation.attribute(inputs, baselines=means,
                                       feature_mask=_tile_masks(fields, tiles))
        band_attr = ablation.attribute(inputs, baselines=means,
                                       feature_mask=_tile_masks(fields, (tiles[0], 1)))
    region = -tile_attr[0][0].reshape(-1, *tile_attr[0].shape[-2:])[0].numpy()
    band_map = -band_attr[0][0].reshape(-1, *band_attr[0].shape[-2:])[0].numpy()
    starts = [int(r[0]) for r in np.array_split(np.arange(band_map.shape[0]), tiles[0])]
    return occlusion, region, band_map[starts, 0]


def _saliency(
    forecast: TargetForecast, fields: list[torch.Tensor], weights: torch.Tensor,
    finite: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-field ``sum |grad| * std`` and its maps (history summed) of the target's mean."""
    import torch
    from captum.attr import Saliency

    def mean(*x: torch.Tensor) -> torch.Tensor:
        pred = torch.where(finite, forecast(*x), torch.zeros((), dtype=torch.float32))
        out = (pred * weights * finite).sum(dim=(-2, -1)) / (weights * finite).sum(
            dim=(-2, -1)).clamp(min=1e-12)
        # A field the model ignores gets a zero gradient instead of Captum's "not used in
        # the graph" error (its autograd call does not allow unused inputs).
        return out + 0.0 * sum(v.sum() for v in x)

    inputs = tuple(f.clone().requires_grad_() for f in fields)
    grads = Saliency(mean).attribute(inputs, abs=True)
    maps = []
    for g, f in zip(grads, fields, strict=True):
        # NaN-aware: wave fields are NaN where there are no waves.
        spread = torch.sqrt(torch.nanmean((f - torch.nanmean(f)) ** 2))
        scaled = g.detach() * torch.nan_to_num(spread).clamp(min=1e-12)
        maps.append(torch.nan_to_num(scaled).reshape(-1, *f.shape[-2:]).sum(dim=0).numpy())
    stacked = np.stack(maps)
    return stacked.sum(axis=(-2, -1)), stacked
