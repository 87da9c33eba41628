"""Subclasses of two ``aurora`` classes that fix what the platform needs from them.

* ``AuroraAirPollution``: its post-decoder hook is wrong for batches larger than one; the
  subclass runs it one sample at a time. It also takes ``atmos_stats``, the pressure-level
  counterpart of Aurora's ``surf_stats``, which Aurora lacks.
* ``AuroraWave``: its post-decoder hook discards the density logits; the subclass keeps them
  for the training loss.

:func:`aurora_class` picks the class a variant's model is built from. ``aurora`` and ``torch``
are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from aurora import Batch

__all__ = ["aurora_class"]

_FIXED_CLASSES: dict[str, type[torch.nn.Module]] = {}


def _air_pollution_per_sample() -> type[torch.nn.Module]:
    """``AuroraAirPollution`` whose post-decoder hook works for batches larger than one, and
    which normalises pressure-level variables with ``atmos_stats`` (see :func:`_restat`).

    In microsoft-aurora 2.0.1 the hook adds ``pred`` of shape ``(b, 1, h, w)`` to
    ``prev[:, k]`` of shape ``(b, h, w)``, which broadcasts to ``(b, b, h, w)``: every batch of
    more than one sample comes out wrong. This subclass runs the package's own hook one sample
    at a time and stacks the results; weights and state-dict keys are unchanged.
    """
    import dataclasses

    import torch
    from aurora import AuroraAirPollution

    class AuroraAirPollutionBatched(AuroraAirPollution):
        def __init__(
            self, *, atmos_stats: dict[str, tuple[float, float]] | None = None, **kw_args: object
        ) -> None:
            super().__init__(**kw_args)
            self.atmos_stats = _checked_atmos_stats(
                atmos_stats or {}, self.atmos_vars, self.positive_atmos_vars
            )

        def forward(self, batch: Batch, lead_times: torch.Tensor | None = None) -> Batch:
            pred = super().forward(_restat(batch, self.atmos_stats, to_aurora=True), lead_times)
            return _restat(pred, self.atmos_stats, to_aurora=False)

        def _post_decoder_hook(self, batch: Batch, pred: Batch) -> Batch:
            n = next(iter(pred.surf_vars.values())).shape[0]
            if n == 1:
                return super()._post_decoder_hook(batch, pred)
            parts = [
                super(AuroraAirPollutionBatched, self)._post_decoder_hook(
                    _take(batch, i), _take(pred, i)
                )
                for i in range(n)
            ]
            return dataclasses.replace(
                pred,
                surf_vars={
                    k: torch.cat([p.surf_vars[k] for p in parts]) for k in parts[0].surf_vars
                },
                atmos_vars={
                    k: torch.cat([p.atmos_vars[k] for p in parts]) for k in parts[0].atmos_vars
                },
            )

    return AuroraAirPollutionBatched


def _take(b: Batch, i: int) -> Batch:
    """Sample ``i`` of ``b`` as a batch of one."""
    import dataclasses

    return dataclasses.replace(
        b,
        surf_vars={k: v[i : i + 1] for k, v in b.surf_vars.items()},
        atmos_vars={k: v[i : i + 1] for k, v in b.atmos_vars.items()},
        metadata=dataclasses.replace(b.metadata, time=b.metadata.time[i : i + 1]),
    )


def _restat(batch: Batch, stats: dict[str, tuple[float, float]], *, to_aurora: bool) -> Batch:
    """``batch`` with each variable of ``stats`` mapped onto Aurora's normalisation
    (``to_aurora``) or back from it.

    ``stats`` maps ``"{var}_{level}"`` (e.g. ``"co_850"``) to ``(location, scale)``. Aurora
    normalises pressure-level variables with its fixed ``aurora.normalisation`` tables only (it
    has ``surf_stats`` but no ``atmos_stats``). With Aurora's ``(L, S)`` and the given
    ``(l, s)``, ``x' = (x - l) S / s + L`` normalises to ``(x - l) / s``; the prediction maps
    back the same way. The network, its positivity clamps and its log transform thus see
    exactly the variable normalised with the given statistics. The clamps act on normalised
    values, so a positive variable's location must be 0 (:func:`_checked_atmos_stats`).
    """
    import dataclasses

    import torch
    from aurora.normalisation import level_to_str, locations, scales

    if not stats:
        return batch
    levels = [level_to_str(lev) for lev in batch.metadata.atmos_levels]
    out = dict(batch.atmos_vars)
    for name, x in batch.atmos_vars.items():
        keys = [f"{name}_{lev}" for lev in levels]
        if not any(k in stats for k in keys):
            continue
        ratio, shift = [], []
        for k in keys:
            loc, scale = stats.get(k, (locations[k], scales[k]))
            r = scales[k] / scale if to_aurora else scale / scales[k]
            ratio.append(r)
            shift.append(locations[k] - loc * r if to_aurora else loc - locations[k] * r)
        a = torch.tensor(ratio, dtype=x.dtype, device=x.device)[:, None, None]
        b = torch.tensor(shift, dtype=x.dtype, device=x.device)[:, None, None]
        out[name] = x * a + b
    return dataclasses.replace(batch, atmos_vars=out)


def _checked_atmos_stats(
    stats: dict[str, tuple[float, float]], atmos_vars: tuple[str, ...],
    positive: tuple[str, ...],
) -> dict[str, tuple[float, float]]:
    """``stats`` as floats, or ValueError naming the first entry the model cannot apply."""
    out: dict[str, tuple[float, float]] = {}
    for key, (loc, scale) in stats.items():
        var = next((v for v in atmos_vars if key.startswith(f"{v}_")), None)
        if var is None:
            raise ValueError(f"atmos_stats key {key!r} is not '<variable>_<level>' of one of "
                             f"the model's atmos_vars {atmos_vars}")
        if not float(scale) > 0:
            raise ValueError(f"atmos_stats[{key!r}] has scale {scale}; it must be positive")
        if var in positive and float(loc) != 0:
            raise ValueError(f"atmos_stats[{key!r}] has location {loc}; {var} is clamped at "
                             f"zero after normalisation, so its location must be 0")
        out[key] = (float(loc), float(scale))
    return out


def _wave_with_density_outputs() -> type[torch.nn.Module]:
    """``AuroraWave`` that keeps, per forward pass, what its post-decoder hook throws away.

    The package's hook turns each wave variable's density logit into a NaN mask ("no waves")
    and deletes the logit, so a loss on the returned prediction can neither train the density
    channel nor pass gradients through masked points. When ``wave_aux`` is a list (the trainer
    sets it), every forward pass appends ``{name: (raw_prediction, density_logit)}`` with the
    values before masking. Predictions, weights and state-dict keys are unchanged.
    """
    import torch
    from aurora import AuroraWave
    from aurora.normalisation import normalise_surf_var

    class AuroraWaveTrainable(AuroraWave):
        wave_aux: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] | None = None

        def _post_decoder_hook(self, batch: Batch, pred: Batch) -> Batch:
            if self.wave_aux is not None:
                kept = {}
                for name in self.density_channel_surf_vars:
                    density = pred.surf_vars.get(f"{name}_density")
                    if density is None:
                        continue
                    if f"{name}_sin" in pred.surf_vars:  # an angle: modelled as sine, cosine
                        raw = torch.rad2deg(torch.atan2(
                            pred.surf_vars[f"{name}_sin"], pred.surf_vars[f"{name}_cos"]
                        )) % 360
                    elif name in pred.surf_vars:
                        raw = pred.surf_vars[name]
                    else:
                        continue
                    # The hook runs before unnormalisation; the prediction gets the same one.
                    raw = normalise_surf_var(raw, name, stats=self.surf_stats, unnormalise=True)
                    kept[name] = (raw, density)
                self.wave_aux.append(kept)
            return super()._post_decoder_hook(batch, pred)

    return AuroraWaveTrainable


def aurora_class(name: str) -> type[torch.nn.Module]:
    """The ``aurora`` class called ``name``, or its fixed subclass where this module has one."""
    import aurora

    if name == "AuroraAirPollution":
        if "air" not in _FIXED_CLASSES:
            _FIXED_CLASSES["air"] = _air_pollution_per_sample()
        return _FIXED_CLASSES["air"]
    if name == "AuroraWave":
        if "wave" not in _FIXED_CLASSES:
            _FIXED_CLASSES["wave"] = _wave_with_density_outputs()
        return _FIXED_CLASSES["wave"]
    cls: type[torch.nn.Module] = getattr(aurora, name)
    return cls
