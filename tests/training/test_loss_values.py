"""The training loss against its definition, computed here in float64 from first principles:
per variable (and level), the cos-latitude-weighted mean over the points with a finite target
of the elementwise error of the normalised difference, averaged over variables. Both of the
loss's paths are held to it: targets without a missing point (its shortcut) and targets with
some (its masked mean)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import torch
from aurora import Batch, Metadata

from aurora_mlops.data import NormStats
from aurora_mlops.training import LossConfig, lat_weights, rollout_loss

LEVELS = (1000, 850, 500)
LAT = torch.linspace(90, -90, 6)
LON = torch.linspace(0, 345, 8)
STATS = NormStats(
    mean={"2t": 280.0, "msl": 1.0e5, **{f"t_{lv}": 250.0 + lv / 50 for lv in LEVELS}},
    std={"2t": 12.0, "msl": 900.0, **{f"t_{lv}": 8.0 + lv / 500 for lv in LEVELS}},
    split=(0, 10),
)


def _fields(seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Surface ``(b=2, h, w)`` and atmospheric ``(b, c=3, h, w)`` fields near the means."""
    g = torch.Generator().manual_seed(seed)
    shape = (2, len(LAT), len(LON))
    surf = {"2t": 280 + 12 * torch.randn(shape, generator=g),
            "msl": 1e5 + 900 * torch.randn(shape, generator=g)}
    atmos = {"t": 255 + 8 * torch.randn((2, len(LEVELS), *shape[1:]), generator=g)}
    return surf, atmos


def _pred(surf: dict[str, torch.Tensor], atmos: dict[str, torch.Tensor]) -> Batch:
    return Batch(
        surf_vars={k: v[:, None].clone().requires_grad_() for k, v in surf.items()},
        static_vars={},
        atmos_vars={k: v[:, None].clone().requires_grad_() for k, v in atmos.items()},
        metadata=Metadata(lat=LAT, lon=LON, time=(datetime(2024, 1, 1),) * 2,
                          atmos_levels=LEVELS),
    )


def _elementwise(d: np.ndarray, kind: str, delta: float) -> np.ndarray:
    if kind == "mse":
        return d * d
    if kind == "huber":
        a = np.abs(d)
        return np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return np.abs(d)


def _reference(pred: Batch, surf: dict[str, torch.Tensor], atmos: dict[str, torch.Tensor],
               kind: str, delta: float) -> float:
    """The loss by its definition, in float64."""
    w = np.cos(np.deg2rad(LAT.double().numpy())).clip(min=0)
    w = np.where(w <= 1e-6, w[w > 1e-6].min() / 2, w)
    w = (w / w.mean())[:, None]
    terms = []
    for name, target in [*surf.items(), *atmos.items()]:
        p = (pred.surf_vars.get(name, pred.atmos_vars.get(name)))[:, 0].detach().double().numpy()
        t = target.double().numpy()
        if name in surf:
            std = np.full((1, 1, 1), STATS.std[name])
        else:
            std = np.array([STATS.std[f"{name}_{lv}"] for lv in LEVELS])[:, None, None]
        valid = np.isfinite(t)
        err = _elementwise((p - np.where(valid, t, 0)) / std, kind, delta)
        weights = np.broadcast_to(w, err.shape) * valid
        terms.append(float((err * weights).sum() / weights.sum()))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing-points"])
@pytest.mark.parametrize("kind", ["mae", "mse", "huber"])
def test_the_loss_equals_its_definition(kind: str, missing: bool) -> None:
    surf, atmos = _fields(0)
    target_surf, target_atmos = _fields(1)
    if missing:
        target_surf["2t"][0, :2, :3] = float("nan")
        target_atmos["t"][1, 1, 3:, :] = float("nan")
    pred = _pred(surf, atmos)
    cfg = LossConfig(kind=kind, huber_delta=0.5, positivity=False)
    targets = {"surf": {k: v[:, None] for k, v in target_surf.items()},
               "atmos": {k: v[:, None] for k, v in target_atmos.items()}}
    loss = rollout_loss([pred], targets, STATS, lat_weights(LAT), cfg, [1.0])
    assert float(loss) == pytest.approx(_reference(pred, target_surf, target_atmos, kind, 0.5),
                                        rel=1e-5)
    loss.backward()
    for v in (*pred.surf_vars.values(), *pred.atmos_vars.values()):
        assert v.grad is not None and torch.isfinite(v.grad).all()
    if missing:  # no gradient where the target is missing, some elsewhere
        g_2t, g_t = pred.surf_vars["2t"].grad, pred.atmos_vars["t"].grad
        assert (g_2t[0, 0, :2, :3] == 0).all() and (g_t[1, 0, 1, 3:, :] == 0).all()
        assert (g_2t[0, 0, 2:] != 0).all() and (g_t[1, 0, 0] != 0).all()


def test_a_nan_prediction_where_the_target_is_known_makes_the_loss_nan() -> None:
    """A diverged model fails the trial instead of scoring zero, with or without missing
    target points."""
    surf, atmos = _fields(0)
    for missing in (False, True):
        target_surf, target_atmos = _fields(1)
        if missing:
            target_surf["msl"][0, 0, 0] = float("nan")
        surf["2t"][1, 2, 2] = float("nan")
        targets = {"surf": {k: v[:, None] for k, v in target_surf.items()},
                   "atmos": {k: v[:, None] for k, v in target_atmos.items()}}
        loss = rollout_loss([_pred(surf, atmos)], targets, STATS, lat_weights(LAT),
                            LossConfig(positivity=False), [1.0])
        assert torch.isnan(loss)
