"""Trial hyperparameters: one typed model, used by the CLI, Katib specs and the trainer.

Every name here is the name of a Katib parameter and of its trial parameter (no renaming hops):
``--learning_rate=3e-4`` on the command line, ``learning_rate`` in the Experiment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aurora_mlops.errors import ConfigError

__all__ = [
    "ARCHITECTURE_KNOBS",
    "MODEL_KNOBS",
    "PROFILE_DEFAULTS",
    "TrialParams",
    "describe_params",
    "parse_param_args",
    "resolve_params",
]

#: Trial parameters that are passed to the Aurora constructor.
MODEL_KNOBS: tuple[str, ...] = (
    "embed_dim",
    "num_heads",
    "encoder_depths",
    "decoder_depths",
    "mlp_ratio",
    "dec_mlp_ratio",
    "patch_size",
    "drop_path",
    "drop_rate",
    "max_history_size",
    "use_lora",
    "lora_mode",
    "lora_steps",
    "stabilise_level_agg",
)
#: Knobs that change tensor shapes: a published checkpoint does not fit once they change.
ARCHITECTURE_KNOBS: tuple[str, ...] = (
    "embed_dim",
    "num_heads",
    "encoder_depths",
    "decoder_depths",
    "mlp_ratio",
    "dec_mlp_ratio",
    "patch_size",
    "separate_perceiver",
    "coastal_conditioning",
)

Depths = tuple[int, ...]


class TrialParams(BaseModel):
    """All hyperparameters of one trial. ``None`` means "the variant's profile value"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Optimiser and schedule.
    learning_rate: float = Field(gt=0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0, le=1.0)
    warmup_steps: int = Field(default=0, ge=0)
    t0: int = Field(default=50, ge=1, description="CosineAnnealingWarmRestarts T_0 (steps).")
    t_mult: int = Field(default=1, ge=1, description="CosineAnnealingWarmRestarts T_mult.")
    # Architecture (None: the profile's value).
    embed_dim: int | None = Field(default=None, ge=8, le=4096)
    num_heads: int | None = Field(default=None, ge=1, le=128)
    encoder_depths: Depths | None = None
    decoder_depths: Depths | None = None
    mlp_ratio: float | None = Field(default=None, gt=0, le=16)
    dec_mlp_ratio: float | None = Field(default=None, gt=0, le=16)
    patch_size: int | None = Field(default=None, ge=1, le=32)
    # Regularisation.
    drop_path: float | None = Field(default=None, ge=0, lt=1)
    drop_rate: float | None = Field(default=None, ge=0, lt=1)
    # Rollout and LoRA.
    max_history_size: int | None = Field(default=None, ge=1, le=8)
    use_lora: bool | None = None
    lora_mode: Literal["single", "from_second", "all"] | None = None
    lora_steps: int | None = Field(default=None, ge=1, le=1000)
    stabilise_level_agg: bool | None = None
    rollout_steps: int = Field(default=1, ge=1, le=40)
    curriculum: bool = False
    val_lead_steps: int | None = Field(
        default=None, ge=1, le=40,
        description="Leads each validation rolls out and scores, weighed equally (default: "
        "--rollout_steps, weighed by --lead_weights). Give evaluate's --lead-steps so that "
        "val_score, the sweep's objective, scores the leads the evaluation reports.")
    val_lead_weighting: Literal["equal", "persistence"] | None = Field(
        default=None,
        description="How val_score weighs the leads it scores: 'equal', or 'persistence' (each "
        "lead by 1 / persistence's error there on the validation split, so that every lead's "
        "skill counts alike and the short leads are not drowned by the long ones' larger "
        "errors). Default: equal with --val_lead_steps, else --lead_weights.")
    # Air pollution.
    separate_perceiver: tuple[str, ...] | None = None
    modulation_heads: bool | None = None
    positivity: bool = True
    log_space_loss: bool = False
    # Ocean waves.
    spectral_loss_weight: float = Field(default=0.0, ge=0, le=0.1)
    coastal_conditioning: bool = False
    # Loss.
    loss: Literal["mae", "mse", "huber"] = "mae"
    huber_delta: float = Field(default=1.0, gt=0)
    variable_weights: dict[str, float] = Field(default_factory=dict)
    lead_weights: tuple[float, ...] | None = None
    # Physics-aware augmentation of training windows (training.augment; all off by default).
    augment_lon_roll: bool = Field(
        default=False, description="Roll a global grid by a random number of longitudes.")
    augment_crop: float = Field(
        default=0.0, ge=0, lt=1,
        description="Largest fraction of a regional grid's longitudes a random crop drops.")
    augment_wind_rotation: float = Field(
        default=0.0, ge=0, le=180,
        description="Largest random turn of the wind (and wave directions), degrees.")
    augment_noise: float = Field(
        default=0.0, ge=0, le=1,
        description="Input noise in training standard deviations, inside physical ranges.")
    augment_event_repeat: int = Field(
        default=1, ge=1, le=16,
        description="Times a training window holding an event comes in each pass.")
    # Loop.
    epochs: int = Field(ge=1, le=10_000)
    steps_per_epoch: int = Field(ge=1)
    val_windows: int = Field(default=64, ge=1)
    batch_size: int = Field(ge=1, le=1024)
    accumulation_steps: int = Field(default=1, ge=1, le=1024)
    grad_clip: float = Field(default=1.0, ge=0, description="Max gradient norm; 0 turns it off.")
    num_workers: int = Field(
        default=0, ge=0, le=64,
        description="DataLoader worker processes that read training windows (0: read in the "
        "training process, best for small in-memory datasets).",
    )
    prefetch_factor: int = Field(
        default=2, ge=1, le=64,
        description="Batches each DataLoader worker reads ahead (used when num_workers > 0).",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, le=1024,
        description="CPU threads for torch ops (default: torch's own; the smoke profile uses 1, "
        "which is faster for tiny models and immune to oversubscription on shared cores).",
    )
    amp: bool = False
    activation_checkpointing: bool = False
    patience: int = Field(default=3, ge=1, description="Epochs without improvement before stop.")
    min_delta: float = Field(default=0.0, ge=0)
    seed: int = 0

    @field_validator("variable_weights")
    @classmethod
    def _weights_positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if not w >= 0}
        if bad:
            raise ValueError(f"variable weights must be >= 0, got {bad}")
        return v

    @field_validator("lead_weights")
    @classmethod
    def _lead_weights_positive(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and (not v or any(not w >= 0 for w in v) or sum(v) <= 0):
            raise ValueError(f"lead weights must be >= 0 with a positive sum, got {list(v)}")
        return v

    @field_validator("encoder_depths", "decoder_depths")
    @classmethod
    def _depths_positive(cls, v: Depths | None) -> Depths | None:
        if v is not None and (not v or any(d < 1 for d in v)):
            raise ValueError(f"depths must be positive integers, got {list(v)}")
        return v

    def validation_leads(self) -> int:
        """Leads each validation scores: ``val_lead_steps``, else ``rollout_steps``."""
        return self.val_lead_steps or self.rollout_steps

    def model_overrides(self) -> dict[str, Any]:
        """The Aurora constructor keywords this trial sets (``None`` values left out)."""
        return {k: getattr(self, k) for k in MODEL_KNOBS if getattr(self, k) is not None}

    def changed_architecture(self) -> dict[str, Any]:
        """Architecture knobs this trial sets explicitly (those a checkpoint may not fit)."""
        out = {k: getattr(self, k) for k in ARCHITECTURE_KNOBS if getattr(self, k) is not None}
        return {k: v for k, v in out.items() if v is not False}


PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {
        "learning_rate": 3e-3,
        "epochs": 4,
        "steps_per_epoch": 15,
        "batch_size": 2,
        "val_windows": 8,
        "warmup_steps": 5,
        "t0": 60,
        "torch_threads": 1,
    },
    "production": {
        "learning_rate": 5e-5,
        "epochs": 20,
        "steps_per_epoch": 1000,
        "batch_size": 1,
        "val_windows": 256,
        "warmup_steps": 500,
        "t0": 5000,
        "activation_checkpointing": True,
        "num_workers": 4,
    },
}

_BOOL = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _parse_value(name: str, text: str) -> Any:
    """Turn a command-line string into the value pydantic validates (lists, dicts, bools)."""
    field = TrialParams.model_fields.get(name)
    ann = str(field.annotation) if field else ""
    text = text.strip()
    if "dict[" in ann:
        out: dict[str, float] = {}
        for part in filter(None, re.split(r"[,;\s]+", text)):
            key, sep, val = part.partition(":")
            if not sep:
                raise ConfigError(
                    f"--{name}: expected NAME:WEIGHT pairs like 2t:2,msl:1, got {text!r}"
                )
            out[key] = float(val)
        return out
    if "tuple[" in ann:
        if text.lower() in ("", "none", "[]", "()"):
            return ()
        parts = [p for p in re.split(r"[\s,;x\-\[\]()]+", text) if p]
        return parts
    if "bool" in ann and text.lower() in _BOOL:
        return _BOOL[text.lower()]
    return text


def parse_param_args(args: Sequence[str]) -> dict[str, Any]:
    """Parse ``--name=value`` / ``--name value`` pairs (``-`` and ``_`` both accepted).

    Raises:
        ConfigError: An argument is not of that form.
    """
    out: dict[str, Any] = {}
    it = iter(args)
    for arg in it:
        if not arg.startswith("--") or len(arg) < 3:
            raise ConfigError(
                f"unexpected argument {arg!r}: trial parameters look like --name=value"
            )
        key, sep, value = arg[2:].partition("=")
        if not sep:
            try:
                value = next(it)
            except StopIteration:
                raise ConfigError(f"--{key} needs a value (--{key}=VALUE)") from None
        name = key.replace("-", "_")
        out[name] = _parse_value(name, value)
    return out


def resolve_params(profile: str, given: Mapping[str, Any],
                   base: Mapping[str, Any] | None = None) -> TrialParams:
    """Profile defaults (or ``base``, when given) overlaid with ``given``, validated; unknown
    names are refused.

    Raises:
        ConfigError: An unknown name (the message lists the valid ones) or a bad value (the
            message names the parameter, the rule and the value).
    """
    unknown = sorted(set(given) - set(TrialParams.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown trial parameter(s) {', '.join('--' + u for u in unknown)}; valid ones: "
            f"{', '.join(sorted(TrialParams.model_fields))}"
        )
    values = {**(PROFILE_DEFAULTS[profile] if base is None else base), **given}
    try:
        return TrialParams(**values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "parameters"
            problems.append(f"--{where}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid trial parameter(s): " + "; ".join(problems)) from e


def describe_params(profile: str = "production") -> str:
    """A table of every trial parameter: name, type, the profile's default and the bounds."""
    defaults = PROFILE_DEFAULTS.get(profile, {})
    rows = [("parameter", "type", f"default ({profile})", "bounds", "notes")]
    for name, field in TrialParams.model_fields.items():
        kind = str(field.annotation).replace("typing.", "").replace("<class '", "")
        kind = kind.replace("'>", "")
        if name in defaults:
            default: Any = defaults[name]
        elif field.is_required():
            default = "(required)"
        elif field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if default is None:
            default = "variant's"
        bounds = []
        for m in field.metadata:
            for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                value = getattr(m, attr, None)
                if value is not None:
                    bounds.append(f"{sym}{value}")
        note = "architecture" if name in ARCHITECTURE_KNOBS else (field.description or "")
        rows.append((name, kind, str(default), " ".join(bounds), note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ).rstrip()
