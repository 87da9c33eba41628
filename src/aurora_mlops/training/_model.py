"""The trial's model: the variant built with the trial's knobs, its weights and its wrapper.

``build_trial_model`` turns architecture knobs into Aurora constructor arguments (derived head
counts and decoder depths); ``prepare_model`` loads the initial weights, applies the trial's
switches (modulation heads off, activation checkpointing), moves the model to the device and
wraps it in DistributedDataParallel under ``torchrun``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aurora_mlops.errors import CheckpointError, ConfigError
from aurora_mlops.training._distributed import DDPStepper, Distributed
from aurora_mlops.training._params import TrialParams
from aurora_mlops.variants import (
    Profile,
    VariantSpec,
    build_model,
    load_weights,
    variants_with,
)

__all__ = [
    "COAST_VAR",
    "TrialModel",
    "build_trial_model",
    "coast_mask",
    "modulation_off",
    "prepare_model",
]

COAST_VAR = "coast_mask"


def _heads_for(depths: tuple[int, ...], base: tuple[int, ...]) -> tuple[int, ...]:
    """Per-stage attention heads for ``depths`` stages, extending ``base`` by doubling."""
    heads = list(base[: len(depths)])
    while len(heads) < len(depths):
        heads.append(heads[-1] * 2)
    return tuple(heads)


def coast_mask(lsm: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Ocean cells within ``width`` cells of land (1) and everything else (0), shape ``(h, w)``."""
    land = (lsm > 0.5).float()[None, None]
    near = torch.nn.functional.max_pool2d(land, 2 * width + 1, stride=1, padding=width)[0, 0]
    return ((near > 0) & (land[0, 0] == 0)).float()


def build_trial_model(spec: VariantSpec, params: TrialParams, profile: Profile) -> torch.nn.Module:
    """The variant's model with the trial's knobs (derived head counts and decoder depths).

    Raises:
        ConfigError: A knob does not apply to the variant, or Aurora rejects the combination.
    """
    overrides = params.model_overrides()
    base = spec.config(profile)
    from aurora import Aurora

    defaults = {k: p.default for k, p in inspect.signature(Aurora.__init__).parameters.items()}
    if "encoder_depths" in overrides:
        enc = tuple(overrides["encoder_depths"])
        overrides.setdefault("decoder_depths", enc[::-1])
        overrides["encoder_num_heads"] = _heads_for(
            enc, base.get("encoder_num_heads", defaults["encoder_num_heads"])
        )
    if "decoder_depths" in overrides:
        dec = tuple(overrides["decoder_depths"])
        enc_heads = overrides.get(
            "encoder_num_heads", base.get("encoder_num_heads", defaults["encoder_num_heads"])
        )
        overrides["decoder_num_heads"] = _heads_for(
            dec,
            tuple(enc_heads)[::-1]
            if len(enc_heads) >= len(dec)
            else tuple(reversed(_heads_for(dec, enc_heads))),
        )
    if spec.aurora_class == "AuroraAirPollution":
        if params.separate_perceiver is not None:
            overrides["separate_perceiver"] = tuple(params.separate_perceiver)
        # ``modulation_heads=off`` is applied after loading weights (see _modulation_off):
        # Aurora's decoder hook always reads the heads, so they stay and are held at zero.
    elif params.separate_perceiver is not None or params.modulation_heads is not None:
        raise ConfigError(
            f"--separate_perceiver and --modulation_heads apply to air-pollution only, "
            f"not to {spec.name}"
        )
    if params.coastal_conditioning:
        if COAST_VAR not in spec.extra_inputs:
            raise ConfigError(
                f"--coastal_conditioning applies to {variants_with('extra_inputs', COAST_VAR)} "
                f"only, not {spec.name}"
            )
        overrides["static_vars"] = (*spec.static_vars, COAST_VAR)
        overrides["surf_stats"] = {**base.get("surf_stats", {}), COAST_VAR: (0.0, 1.0)}
    if params.spectral_loss_weight > 0 and "spectral" not in spec.loss_terms:
        raise ConfigError(f"--spectral_loss_weight applies to "
                          f"{variants_with('loss_terms', 'spectral')} only, not {spec.name}")
    if params.log_space_loss and "log_space" not in spec.loss_terms:
        raise ConfigError(f"--log_space_loss applies to "
                          f"{variants_with('loss_terms', 'log_space')} only, not {spec.name}")
    embed = overrides.get("embed_dim", base.get("embed_dim", defaults["embed_dim"]))
    heads = overrides.get("num_heads", base.get("num_heads", defaults["num_heads"]))
    if embed % heads:
        raise ConfigError(f"--embed_dim={embed} must be divisible by --num_heads={heads}")
    model = build_model(spec, overrides, profile=profile)
    return model


def modulation_off(model: torch.nn.Module) -> int:
    """Zero and freeze the air-pollution modulation heads, so that a prediction is the model's
    output plus the previous value (no learned modulation). Returns how many tensors changed."""
    changed = 0
    for name, param in model.named_parameters():
        if ".surf_heads." in name or ".atmos_heads." in name:
            head = name.split("_heads.", 1)[1].split(".", 1)[0]
            if head.endswith("_mod"):
                with torch.no_grad():
                    param.zero_()
                param.requires_grad_(False)
                changed += 1
    return changed


def _diagnose(model: torch.nn.Module, ckpt: Path, params: TrialParams) -> str:
    """Name the knob behind a checkpoint that does not fit (best effort)."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        return f"the checkpoint is unreadable ({e})"
    mine = model.state_dict()
    for key, tensor in mine.items():
        theirs = state.get(key)
        if theirs is not None and tuple(theirs.shape) != tuple(tensor.shape):
            changed = params.changed_architecture()
            hint = (
                f"; the trial changes {', '.join(f'{k}={v}' for k, v in changed.items())}"
                if changed
                else ""
            )
            suspects = [
                k
                for k, v in changed.items()
                if isinstance(v, int) and v in tensor.shape and v not in theirs.shape
            ]
            if suspects:
                hint = f"; the mismatching knob is {', '.join(suspects)}" + hint
            return (
                f"parameter {key} has shape {tuple(theirs.shape)} in the checkpoint but "
                f"{tuple(tensor.shape)} in the model{hint}"
            )
    missing = sorted(set(mine) - set(state))[:3]
    return f"the checkpoint lacks {', '.join(missing)}" if missing else "see the error above"


@dataclass
class TrialModel:
    """The bare model, what the loop calls forward on (DDP's wrapper under ``torchrun``) and
    what ``aurora.rollout`` steps (a :class:`DDPStepper` under ``torchrun``)."""

    module: torch.nn.Module
    wrapped: Any
    stepper: Any


def prepare_model(
    model: torch.nn.Module,
    variant: VariantSpec,
    params: TrialParams,
    init: str | Path | None,
    dist: Distributed,
) -> TrialModel:
    """Load ``init``, apply the trial's switches, move to the device, wrap for DDP.

    Raises:
        CheckpointError: ``init`` does not fit the model (the message names the knob).
        ConfigError: A switch does not apply to this variant or setting.
    """
    if init is not None:
        try:
            load_weights(model, variant, init, strict=not params.coastal_conditioning)
        except CheckpointError as e:
            raise CheckpointError(f"{e}; {_diagnose(model, Path(init), params)}") from e
    if params.modulation_heads is False and not modulation_off(model):
        raise ConfigError(f"variant {variant.name} has no modulation heads to turn off")
    if params.activation_checkpointing:
        try:
            model.configure_activation_checkpointing()  # type: ignore[operator]
        except RuntimeError as e:
            raise ConfigError(f"--activation_checkpointing is not possible here: {e}") from e
    model.to(dist.device)
    if not dist.active:
        return TrialModel(module=model, wrapped=model, stepper=model)
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, find_unused_parameters=True, **dist.ddp_kwargs()
    )
    return TrialModel(module=model, wrapped=ddp, stepper=DDPStepper(ddp))
