"""Ocean waves and air pollution from scratch: density channels train, inputs start on scale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from aurora.rollout import rollout

from aurora_mlops.data import WindowDataset, compute_stats, open_dataset, split_times
from aurora_mlops.training import LossConfig, lat_weights, rollout_loss
from aurora_mlops.variants import build_model, get_variant


def _grads(synthetic_data: Callable[..., Path], keep_aux: bool) -> dict[str, torch.Tensor]:
    spec = get_variant("ocean-waves")
    ds = open_dataset(synthetic_data("ocean-waves"))
    splits = split_times(int(ds.sizes["time"]))
    windows = WindowDataset(ds, spec, splits.train, history=2, levels=spec.smoke_levels)
    batch, targets = windows.batch([0, 1])
    # Targets without waves at a quarter of the points: "no waves" is NaN in wave data.
    for name in ("swh", "mwd", "mwp", "pp1d"):
        targets["surf"][name][:, :, : windows.lat.shape[0] // 4] = float("nan")
    torch.manual_seed(0)
    model = build_model(spec, profile="smoke")
    model.wave_aux = [] if keep_aux else None  # type: ignore[assignment]
    preds = list(rollout(model, batch, 1))
    loss = rollout_loss(preds, targets, compute_stats(ds, spec, splits.train),
                        lat_weights(windows.lat), LossConfig(), [1.0],
                        wave_aux=model.wave_aux if keep_aux else None)
    assert torch.isfinite(loss)
    loss.backward()
    return {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for n, p in model.named_parameters() if n.startswith("decoder.surf_heads.")}


def test_density_heads_get_gradients_only_through_the_kept_logits(
    synthetic_data: Callable[..., Path],
) -> None:
    with_aux, without = _grads(synthetic_data, True), _grads(synthetic_data, False)
    head = "decoder.surf_heads.swh_density.weight"
    # Aurora's hook replaces the density logit by a NaN mask: no gradient reaches the head ...
    assert float(without[head].abs().sum()) == 0.0
    # ... unless the loss sees the logit (binary cross-entropy against "the target has waves").
    assert float(with_aux[head].abs().sum()) > 0.0
    # The values' own heads learn either way.
    assert float(with_aux["decoder.surf_heads.swh.weight"].abs().sum()) > 0.0


def test_smoke_wave_model_starts_on_the_scale_of_the_data(
    synthetic_data: Callable[..., Path],
) -> None:
    """Aurora normalises the bathymetry `wmb` with scale 1 (metres): a model trained from
    scratch then starts ~100x off. The smoke config scales it, so first predictions are sane."""
    spec = get_variant("ocean-waves")
    ds = open_dataset(synthetic_data("ocean-waves"))
    windows = WindowDataset(ds, spec, split_times(int(ds.sizes["time"])).train, history=2,
                            levels=spec.smoke_levels)
    batch, targets = windows.batch([0])
    assert float(batch.static_vars["wmb"].max()) > 1000  # metres, as in HRES-WAM
    torch.manual_seed(0)
    model = build_model(spec, profile="smoke").eval()
    with torch.no_grad():
        pred = next(iter(rollout(model, batch, 1)))
    # Measured (seed 0): spread 0.58x (2t) and 0.32x (msl) of the target's; unscaled wmb gave
    # ~100x. 3x is tight enough to catch that and loose enough for another platform.
    for name in ("2t", "msl"):
        spread = float(pred.surf_vars[name].std())
        assert spread < 3 * float(targets["surf"][name].std()), (name, spread)


def test_smoke_air_pollution_model_starts_near_the_scale_of_the_data(
    synthetic_data: Callable[..., Path],
) -> None:
    """The log emission statics (about -34 to -18) get the same treatment as `wmb`."""
    spec = get_variant("air-pollution")
    ds = open_dataset(synthetic_data("air-pollution"))
    windows = WindowDataset(ds, spec, split_times(int(ds.sizes["time"])).train, history=2,
                            levels=spec.smoke_levels)
    batch, targets = windows.batch([0])
    assert float(batch.static_vars["static_co_log"].min()) < -20
    torch.manual_seed(0)
    model = build_model(spec, profile="smoke").eval()
    with torch.no_grad():
        pred = next(iter(rollout(model, batch, 1)))
    # An untrained model is not expected to be right: this guards against the ~100x scale error
    # of an unnormalised static. Measured (seed 0): spread 0.25x (2t), 4.9x (tcco), 5.3x
    # (tcno2) of the target's, error 1x / 4.8x / 5.2x of its spread. The bound 8 leaves room
    # for another platform's rounding and fails an order of magnitude before 100x (15 did not).
    for name in ("2t", "tcco", "tcno2"):
        target = targets["surf"][name][:, 0]
        ratio = float(pred.surf_vars[name][:, 0].std() / target.std())
        error = float((pred.surf_vars[name][:, 0] - target).pow(2).mean().sqrt() / target.std())
        assert ratio < 8 and error < 8, (name, ratio, error)
