"""Training losses and validation scores on normalised variables.

All losses compare a predicted ``aurora.Batch`` with target tensors after normalising both with
the training split's :class:`~aurora_mlops.data.NormStats`, weight grid cells by cos(latitude),
and combine variables (``variable_weights``) and lead times (``lead_weights``) as weighted means.

``val_score`` (the objective every sweep minimises) is defined here, once::

    val_score = sum_k w_k * nRMSE_k / sum_k w_k  +  0.1 * (1 - event_F1)

where ``nRMSE_k`` is the area-weighted RMSE at lead ``k`` in normalised units averaged over
variables (and levels), ``w_k`` the lead weights (equal over ``val_lead_steps`` leads where a
trial sets it, as ``evaluate`` weighs its leads; ``1 / pRMSE_k``, persistence's nRMSE at lead
``k`` on the validation split, with ``val_lead_weighting=persistence``), and ``event_F1`` the
F1 score of exceeding the training split's 90th percentile of the variant's event variable
(10 m wind speed; PM2.5 for air pollution; significant wave height for waves). A perfect
forecast scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from aurora_mlops.variables import VARIABLES
from aurora_mlops.variants import WAVE_VARS, get_variant

if TYPE_CHECKING:
    from aurora import Batch

    from aurora_mlops.data import NormStats

__all__ = [
    "EVENT_QUANTILE",
    "EVENT_WEIGHT",
    "LossConfig",
    "ScoreAccumulator",
    "event_field",
    "lat_weights",
    "rollout_loss",
]

EVENT_WEIGHT = 0.1
EVENT_QUANTILE = 0.9
_LOG_EPS_FRACTION = 1e-2


@dataclass(frozen=True)
class LossConfig:
    """How predictions are compared with targets during training."""

    kind: str = "mae"
    huber_delta: float = 1.0
    variable_weights: Mapping[str, float] = field(default_factory=dict)
    log_space: bool = False
    positivity: bool = True
    spectral_weight: float = 0.0

    @classmethod
    def from_params(cls, params: Any) -> LossConfig:
        """The loss a trial's :class:`~aurora_mlops.training.TrialParams` ask for."""
        return cls(
            kind=params.loss,
            huber_delta=params.huber_delta,
            variable_weights=params.variable_weights,
            log_space=params.log_space_loss,
            positivity=params.positivity,
            spectral_weight=params.spectral_loss_weight,
        )


def lat_weights(lat: torch.Tensor) -> torch.Tensor:
    """cos(latitude) weights with mean 1, shape ``(h, 1)``; poles get a small positive weight."""
    w = torch.cos(torch.deg2rad(lat.double())).clamp(min=0.0)
    if float(w.sum()) == 0.0:
        w = torch.ones_like(w)
    w = torch.where(w <= 1e-6, torch.full_like(w, float(w[w > 1e-6].min()) / 2), w)
    return (w / w.mean()).float()[:, None]


def _is_angle(name: str) -> bool:
    spec = VARIABLES.get(("surf", name))
    return bool(spec and spec.angle)


def _is_positive(kind: str, name: str) -> bool:
    spec = VARIABLES.get((kind, name))  # type: ignore[arg-type]
    return bool(spec and spec.positive)


def _normalised_diff(
    pred: torch.Tensor, target: torch.Tensor, std: torch.Tensor, *, angle: bool, log_space: bool
) -> torch.Tensor:
    """``(pred - mean) / std - (target - mean) / std`` (the mean cancels; an angle's difference
    wraps), or the difference of the logs in ``log_space``."""
    if angle:
        d = torch.remainder(pred - target + 180.0, 360.0) - 180.0
        return d / std
    if log_space:
        eps = std * _LOG_EPS_FRACTION
        return torch.log(pred.clamp(min=0) + eps) - torch.log(target.clamp(min=0) + eps)
    return (pred - target) / std


def _stats(
    stats: NormStats, kind: str, name: str, levels: Sequence[int], like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "surf":
        m, s = [stats.mean[name]], [stats.std[name]]
        shape: tuple[int, ...] = (1, 1, 1)
    else:
        m = [stats.mean[f"{name}_{lv}"] for lv in levels]
        s = [stats.std[f"{name}_{lv}"] for lv in levels]
        shape = (len(levels), 1, 1)
    return (
        torch.tensor(m, dtype=like.dtype, device=like.device).reshape(shape),
        torch.tensor(s, dtype=like.dtype, device=like.device).reshape(shape),
    )


def _elementwise(d: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    if cfg.kind == "mse":
        return d * d
    if cfg.kind == "huber":
        a = d.abs()
        delta = cfg.huber_delta
        return torch.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return d.abs()


def _masked_mean(x: torch.Tensor, w: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` weighted by ``w`` (broadcast over the last two dims) where ``valid``.

    ``valid`` marks finite *targets* (missing data is skipped); a NaN in ``x`` where the target
    is valid stays NaN, so a diverged model fails instead of scoring zero.
    """
    if bool(valid.all()):
        # Nothing to mask (the usual case): the same mean in three operations instead of eight.
        return (x * w).sum() / (w.sum() * (x.numel() // w.numel())).clamp(min=1e-12)
    ww = w.expand_as(x) * valid
    return torch.where(valid, x, torch.zeros_like(x)).mul(ww).sum() / ww.sum().clamp(min=1e-12)


def _mean_error(
    d: torch.Tensor, cfg: LossConfig, w: torch.Tensor, present: torch.Tensor
) -> torch.Tensor:
    """Weighted mean of the elementwise error of ``d`` where ``present`` (a finite target)."""
    if not bool(present.all()):
        # Zeroed before the error: the gradient of a squared or Huber error of a NaN
        # difference is NaN even where the mean masks it out, and it reached the model.
        d = torch.where(present, d, torch.zeros_like(d))
    return _masked_mean(_elementwise(d, cfg), w, present)


def _prepare(name: str, p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wave fields: Aurora predicts NaN for "no waves", which is the value 0."""
    if name in WAVE_VARS:
        return torch.nan_to_num(p, nan=0.0), torch.nan_to_num(t, nan=0.0)
    return p, t


#: AuroraWave's rule for "no waves": the height of a wave system below 1e-4 m blanks the
#: system's height, direction and period (``AuroraWave.batch_transform_hook``).
_WAVE_SYSTEMS: dict[str, str] = {
    member: height
    for height, members in (
        ("swh", ("swh", "mwd", "mwp", "pp1d")),
        ("shww", ("shww", "mdww", "mpww")),
        ("shts", ("shts", "mdts", "mpts")),
        ("swh1", ("swh1", "mwd1", "mwp1")),
        ("swh2", ("swh2", "mwd2", "mwp2")),
    )
    for member in members
}


def _waves_present(
    name: str, target_surf: Mapping[str, torch.Tensor], target: torch.Tensor
) -> torch.Tensor:
    """Where the target of wave variable ``name`` has waves (Aurora's own rule)."""
    height = target_surf.get(_WAVE_SYSTEMS.get(name, ""))
    if height is None:
        return torch.isfinite(target)
    height = height.float()
    return torch.isfinite(height) & (height >= 1e-4)


def _spectral(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of log zonal power spectra (NaNs treated as zero)."""
    p = torch.fft.rfft(torch.nan_to_num(pred.float()), dim=-1).abs()
    t = torch.fft.rfft(torch.nan_to_num(target.float()), dim=-1).abs()
    return (torch.log1p(p) - torch.log1p(t)).abs().mean()


def _postprocess(
    pred: Batch, positivity: bool
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    surf = dict(pred.surf_vars)
    atmos = dict(pred.atmos_vars)
    if positivity:
        surf = {k: v.clamp(min=0) if _is_positive("surf", k) else v for k, v in surf.items()}
        atmos = {k: v.clamp(min=0) if _is_positive("atmos", k) else v for k, v in atmos.items()}
    return surf, atmos


def step_loss(
    pred: Batch,
    target_surf: Mapping[str, torch.Tensor],
    target_atmos: Mapping[str, torch.Tensor],
    stats: NormStats,
    weights: torch.Tensor,
    cfg: LossConfig,
    wave_aux: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Loss of one rollout step: ``target_*`` hold ``(b, h, w)`` / ``(b, c, h, w)`` tensors.

    ``wave_aux`` (ocean waves, see :func:`aurora_mlops.variants.build_model`) maps a wave
    variable to its prediction before the "no waves" mask and its density logit. With it, the
    variable's term is the error of that raw prediction where the target has waves plus the
    binary cross-entropy of the density logit against "the target has waves", so both the
    values and the density channel learn; without it, masked points count as zero.
    """
    surf, atmos = _postprocess(pred, cfg.positivity)
    wave_aux = wave_aux or {}
    levels = pred.metadata.atmos_levels
    total: torch.Tensor | None = None
    wsum = 0.0
    for kind, preds, targets in (("surf", surf, target_surf), ("atmos", atmos, target_atmos)):
        for name, target in targets.items():
            if name not in preds:
                continue
            density = None
            if kind == "surf" and name in wave_aux:
                raw, logit = wave_aux[name]
                p, t = raw[:, 0].float(), target.float()
                density = logit[:, 0].float()
            else:
                p, t = _prepare(name, preds[name][:, 0].float(), target.float())
            mean, std = _stats(stats, kind, name, levels, p)
            log_space = cfg.log_space and _is_positive(kind, name)
            d = _normalised_diff(p, t, std, angle=_is_angle(name), log_space=log_space)
            present = torch.isfinite(t)
            if density is not None:
                present = present & _waves_present(name, target_surf, t)
            term = _mean_error(d, cfg, weights, present)
            if density is not None:
                bce = torch.nn.functional.binary_cross_entropy_with_logits(
                    density, present.float(), reduction="none"
                )
                term = term + (bce * weights.expand_as(bce)).sum() / weights.expand_as(bce).sum()
            if (
                cfg.spectral_weight > 0
                and kind == "surf"
                and name.startswith(("swh", "shww", "shts"))
            ):
                term = term + cfg.spectral_weight * _spectral((p - mean) / std, (t - mean) / std)
            w = float(cfg.variable_weights.get(name, 1.0))
            total = term * w if total is None else total + term * w
            wsum += w
    if total is None or wsum == 0:
        raise ValueError(
            "no variable of the prediction has a target: check the variant's variables"
        )
    return total / wsum


def rollout_loss(
    preds: Sequence[Batch],
    targets: Mapping[str, Mapping[str, torch.Tensor]],
    stats: NormStats,
    weights: torch.Tensor,
    cfg: LossConfig,
    lead_weights: Sequence[float],
    wave_aux: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor]]] | None = None,
) -> torch.Tensor:
    """Lead-weighted mean of :func:`step_loss` over the rollout steps in ``preds``
    (``wave_aux[k]`` is step ``k``'s, see :func:`step_loss`)."""
    total: torch.Tensor | None = None
    for k, pred in enumerate(preds):
        tk_surf = {n: v[:, k] for n, v in targets["surf"].items()}
        tk_atmos = {n: v[:, k] for n, v in targets["atmos"].items()}
        aux = wave_aux[k] if wave_aux is not None and k < len(wave_aux) else None
        term = step_loss(pred, tk_surf, tk_atmos, stats, weights, cfg, aux)
        term = term * float(lead_weights[k])
        total = term if total is None else total + term
    assert total is not None
    return total / float(sum(lead_weights[: len(preds)]))


def event_field(variant: str, surf: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The quantity whose exceedances are the variant's events (wind speed, PM2.5, wave height):
    one variable or the speed of two components, as :attr:`VariantSpec.event_inputs` says."""
    names = get_variant(variant).event_inputs
    if len(names) == 2:
        return torch.sqrt(surf[names[0]] ** 2 + surf[names[1]] ** 2)
    return surf[names[0]]


@dataclass
class ScoreAccumulator:
    """Streams validation windows into per-lead squared errors and event counts.

    RMSE per lead is the square root of the mean (over windows) of the area-weighted spatial MSE,
    the WeatherBench2 order of means.
    """

    variant: str
    stats: NormStats
    weights: torch.Tensor
    threshold: float
    sq: dict[int, list[float]] = field(default_factory=dict)
    persistence_sq: dict[int, list[float]] = field(default_factory=dict)
    by_var: dict[str, list[float]] = field(default_factory=dict)
    persistence_by_var: dict[str, list[float]] = field(default_factory=dict)
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def _nmse(
        self,
        preds: Mapping[str, torch.Tensor],
        targets: Mapping[str, torch.Tensor],
        kind: str,
        levels: Sequence[int],
        track: dict[str, list[float]] | None,
    ) -> float:
        values = []
        for name, target in targets.items():
            p, t = _prepare(name, preds[name].float(), target.float())
            _, std = _stats(self.stats, kind, name, levels, p)
            d = _normalised_diff(p, t, std, angle=_is_angle(name), log_space=False)
            valid = torch.isfinite(t)
            per_sample = [
                float(_masked_mean(d[i] ** 2, self.weights, valid[i])) for i in range(d.shape[0])
            ]
            values.append(sum(per_sample) / len(per_sample))
            if track is not None:
                raw = d * std  # back to physical units
                track.setdefault(name, []).append(
                    sum(
                        float(_masked_mean(raw[i] ** 2, self.weights, valid[i]))
                        for i in range(d.shape[0])
                    )
                    / d.shape[0]
                )
        return sum(values) / len(values)

    def add(
        self,
        lead: int,
        pred: Batch,
        last_input: Batch,
        t_surf: Mapping[str, torch.Tensor],
        t_atmos: Mapping[str, torch.Tensor],
    ) -> None:
        """Score one lead: model ``pred`` and persistence (``last_input``'s newest step)."""
        surf, atmos = _postprocess(pred, True)
        levels = pred.metadata.atmos_levels
        track = self.by_var if lead == 0 else None
        ptrack = self.persistence_by_var if lead == 0 else None
        m = self._nmse({k: v[:, 0] for k, v in surf.items()}, t_surf, "surf", levels, track)
        m += self._nmse({k: v[:, 0] for k, v in atmos.items()}, t_atmos, "atmos", levels, track)
        self.sq.setdefault(lead, []).append(m / 2 if t_atmos else m)
        ps = {k: v[:, -1] for k, v in last_input.surf_vars.items() if k in t_surf}
        pa = {k: v[:, -1] for k, v in last_input.atmos_vars.items() if k in t_atmos}
        pm = self._nmse(ps, t_surf, "surf", levels, ptrack) + self._nmse(
            pa, t_atmos, "atmos", levels, ptrack
        )
        self.persistence_sq.setdefault(lead, []).append(pm / 2 if t_atmos else pm)
        fe = event_field(self.variant, {k: v[:, 0] for k, v in surf.items()}) > self.threshold
        te = event_field(self.variant, t_surf) > self.threshold
        self.tp += int((fe & te).sum())
        self.fp += int((fe & ~te).sum())
        self.fn += int((~fe & te).sum())

    def rmse_by_lead(self) -> list[float]:
        return [math.sqrt(sum(v) / len(v)) for _, v in sorted(self.sq.items())]

    def persistence_rmse_by_lead(self) -> list[float]:
        return [math.sqrt(sum(v) / len(v)) for _, v in sorted(self.persistence_sq.items())]

    def rmse_by_variable(self, persistence: bool = False) -> dict[str, float]:
        """Lead-1 RMSE per variable in physical units (atmospheric: over all levels)."""
        src = self.persistence_by_var if persistence else self.by_var
        return {k: math.sqrt(sum(v) / len(v)) for k, v in src.items()}

    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else 2 * self.tp / denom

    def score(self, lead_weights: Sequence[float]) -> float:
        """``val_score`` as defined in this module's docstring."""
        rmse = self.rmse_by_lead()
        w = list(lead_weights[: len(rmse)])
        return sum(wi * r for wi, r in zip(w, rmse, strict=True)) / sum(w) + EVENT_WEIGHT * (
            1 - self.f1()
        )
