"""Reload what ``train-trial`` wrote: the model with the trial's knobs and its best weights.

``evaluate --model``, ``benchmark`` and (later) ``package`` all start from a trial directory
(``model.ckpt`` + ``trial.json`` + ``norm_stats.json``); this is the one place that turns it
back into a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aurora_mlops._best import BEST_FILE, read_best
from aurora_mlops._io import sha256_file
from aurora_mlops.errors import CheckpointError, ConfigError
from aurora_mlops.training._params import TrialParams
from aurora_mlops.variants import Profile, VariantSpec, get_variant, load_weights

__all__ = ["TrainedModel", "checkpoint_record", "load_trained"]


@dataclass
class TrainedModel:
    """A trial's model with its best weights, and what is needed to feed it.

    Attributes:
        model: The Aurora model in eval mode, on the CPU.
        variant: The variant the trial trained.
        params: The trial's resolved parameters.
        profile: ``smoke`` or ``production``.
        history: Input steps per window the trial used.
        levels: Pressure levels the trial trained on.
        trial: The parsed ``trial.json``.
        checkpoint: Path of ``model.ckpt``.
    """

    model: torch.nn.Module
    variant: VariantSpec
    params: TrialParams
    profile: Profile
    history: int
    levels: tuple[int, ...]
    trial: dict[str, Any]
    checkpoint: Path


def _from_sweep(path: Path) -> Path:
    """A sweep work dir (``best.json``, no ``model.ckpt``) stands for its best trial."""
    if not path.is_dir() or (path / "model.ckpt").exists() or not (path / BEST_FILE).is_file():
        return path
    try:
        best = read_best(path)
    except ConfigError as e:  # load_trained promises a CheckpointError for what it cannot load
        raise CheckpointError(str(e)) from e
    if best.checkpoint is None:
        raise CheckpointError(f"{best.path}: the sweep has no best trial with a checkpoint yet")
    return best.checkpoint


def load_trained(path: str | Path, variant: str | None = None) -> TrainedModel:
    """Rebuild the model of a ``train-trial`` output and load its checkpoint.

    Args:
        path: The trial directory or its ``model.ckpt``, or a local sweep's work dir (its
            ``best.json`` names the best trial's checkpoint).
        variant: When given, the trial must have trained this variant.

    Raises:
        CheckpointError: No checkpoint or ``trial.json``, a checksum mismatch (the file changed
            or is incomplete), another variant, or weights that do not fit.
    """
    from aurora_mlops.training._trainer import build_trial_model, modulation_off

    path = _from_sweep(Path(path))
    ckpt = path / "model.ckpt" if path.is_dir() else path
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: no such checkpoint; pass a train-trial output directory")
    meta_path = ckpt.parent / "trial.json"
    if not meta_path.is_file():
        raise CheckpointError(
            f"{ckpt}: no trial.json beside it; pass a checkpoint written by train-trial"
        )
    try:
        trial = json.loads(meta_path.read_text())
        params = TrialParams.model_validate(trial["params"])
        spec = get_variant(trial["variant"])
        profile: Profile = trial["profile"]
        config = trial["config"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{meta_path}: not a train-trial record ({e})") from e
    if variant is not None and spec.name != variant:
        raise CheckpointError(
            f"{ckpt} was trained for variant {spec.name}, not {variant}: pass --variant {spec.name}"
        )
    expected = trial.get("checkpoint", {}).get("sha256")
    if expected:
        actual = sha256_file(ckpt)
        if actual != expected:
            raise CheckpointError(
                f"{ckpt}: sha256 {actual} differs from {expected} recorded in {meta_path}; "
                "the file changed or is incomplete: re-run the trial or restore the file"
            )
    model = build_trial_model(spec, params, profile)
    load_weights(model, spec, ckpt, strict=not params.coastal_conditioning)
    if params.modulation_heads is False:
        modulation_off(model)
    model.eval()
    return TrainedModel(
        model=model,
        variant=spec,
        params=params,
        profile=profile,
        history=int(config.get("history", getattr(model, "max_history_size", 2))),
        levels=tuple(int(x) for x in config.get("levels", ())),
        trial=trial,
        checkpoint=ckpt,
    )


def checkpoint_record(trained: TrainedModel) -> dict[str, Any]:
    """Which checkpoint a result came from: ``path``, ``sha256`` and ``trial`` (its folder name).

    ``evaluate`` writes it into ``metrics.json`` so that ``package`` can refuse an evaluation of
    another checkpoint.
    """
    return {
        "path": str(trained.checkpoint),
        "sha256": trained.trial.get("checkpoint", {}).get("sha256"),
        "trial": trained.checkpoint.parent.name,
    }
