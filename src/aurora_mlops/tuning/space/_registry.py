"""The search spaces of the tuning plan: one per variant, for production and for smoke sweeps.

Production spaces hold the bounds of the tuning plan (architecture and fine-tune knobs); smoke
spaces only fine-tune knobs, since the smoke model is tiny and fixed. Parameter names are
``train-trial`` flags (:class:`~aurora_mlops.training.TrialParams` fields); the types and
constructors are in :mod:`aurora_mlops.tuning.space._search_space`.
"""

from __future__ import annotations

from typing import Literal

from aurora_mlops.tuning.space._search_space import (
    SearchParameter,
    SearchSpace,
    categorical,
    discrete,
    double,
    integer,
)

__all__ = ["AUGMENT_SPACES", "SMOKE_SPACES", "SPACES", "get_space"]


def _space(*params: SearchParameter) -> SearchSpace:
    return SearchSpace(parameters=params)


_ON_OFF = (True, False)
_SPECIES_SUBSETS = (
    ("co", "no", "no2", "go3", "so2"),  # the published AuroraAirPollution choice
    ("no", "no2", "go3", "so2"),
    ("no", "no2", "so2"),
)

# Physics-aware augmentation (training/_augment.py). No augment_crop: it crops regional grids
# only, and every variant's production data (ERA5, IFS HRES, CAMS, HRES-WAM) is global, where
# the crop does nothing and a swept range would spend trials on a dead knob.
_AUGMENT = (
    categorical("augment_lon_roll", _ON_OFF, help="Roll the globe by a random longitude."),
    double("augment_wind_rotation", 0.0, 30.0,
           help="Largest random turn of the wind and wave directions (degrees)."),
    double("augment_noise", 0.0, 0.1, help="Input noise in training standard deviations."),
    discrete("augment_event_repeat", (1, 2, 4),
             help="Times the windows richest in events come in a pass."),
)

#: Production search spaces, the bounds of the tuning plan. Medium-res searches only
#: ``encoder_depths``: ``train-trial`` sets ``decoder_depths`` to its reverse.
SPACES: dict[str, SearchSpace] = {
    "medium-res": _space(
        double("learning_rate", 8e-5, 4e-4, log=True, help="Peak AdamW learning rate."),
        discrete("weight_decay", (0, 1e-3, 1e-2)),
        categorical("encoder_depths", ((6, 10, 8), (6, 8, 8), (8, 10, 8)),
                    help="Swin encoder depths; the decoder takes the reverse."),
        discrete("num_heads", (12, 16)),
        discrete("embed_dim", (384, 512)),
        discrete("mlp_ratio", (3.0, 4.0)),
        discrete("dec_mlp_ratio", (2.0, 3.0)),
        double("drop_path", 0.0, 0.2),
        double("drop_rate", 0.0, 0.1),
        discrete("max_history_size", (2, 3, 4)),
        categorical("lora_mode", ("single", "from_second", "all")),
        integer("lora_steps", 20, 60),
        discrete("accumulation_steps", (2, 4, 8)),
        discrete("batch_size", (1, 2)),
        discrete("num_workers", (2, 4)),
        discrete("prefetch_factor", (2, 4)),
        *_AUGMENT,
    ),
    "high-res": _space(
        discrete("patch_size", (8, 10, 12)),
        categorical("encoder_depths", ((6, 8, 8), (6, 10, 8))),
        categorical("decoder_depths", ((8, 8, 6), (10, 8, 6))),
        discrete("embed_dim", (384, 512)),
        discrete("num_heads", (12, 16)),
        double("drop_path", 0.0, 0.2),
        discrete("dec_mlp_ratio", (1.5, 2.0)),
        discrete("max_history_size", (2, 3)),
        discrete("accumulation_steps", (2, 4)),
        *_AUGMENT,
    ),
    "air-pollution": _space(
        discrete("patch_size", (2, 3, 4)),
        categorical("separate_perceiver", _SPECIES_SUBSETS,
                    help="Species decoded by the separate Perceiver."),
        categorical("modulation_heads", _ON_OFF),
        categorical("log_space_loss", _ON_OFF),
        double("drop_rate", 0.0, 0.1),
        double("drop_path", 0.0, 0.15),
        categorical("lora_mode", ("single", "from_second")),
        integer("lora_steps", 20, 60),
        *_AUGMENT,
    ),
    "ocean-waves": _space(
        categorical("lora_mode", ("from_second", "all")),
        discrete("embed_dim", (384, 512)),
        discrete("num_heads", (12, 16)),
        discrete("mlp_ratio", (3.0, 4.0)),
        double("drop_path", 0.0, 0.15),
        categorical("coastal_conditioning", _ON_OFF),
        double("spectral_loss_weight", 0.0, 0.1),
        *_AUGMENT,
    ),
}

# From 1.5e-3 to 5e-3 around the default 3e-3, because in make run's 1500-step trials every
# medium-res, ocean-waves and air-pollution trial below 2e-3 lost to the defaults; the best ones
# sat at 3.7-3.8e-3, and medium-res at 5e-3 with one cosine cycle (val_score 0.084) beat the
# defaults (0.085). The top stays at 5e-3: over 300 steps 7.3e-3 diverged (high-res).
_SMOKE_LR = double("learning_rate", 1.5e-3, 5e-3, log=True,
                   help="Around the smoke profile's 3e-3 (a tiny model learns fast).")
# The cosine restart period: 60 is one cycle of the smoke profile's own 60 steps (its default),
# 1500 one cycle of make run's 1500-step trials, which is offered because one cycle over 1500
# steps beat 25 restarts on every variant (medium-res val_score 0.082 against 0.087).
_SMOKE_T0 = discrete("t0", (60, 300, 1500),
                     help="Cosine restart period in steps (60: the smoke default's one cycle).")
_SMOKE_WD = discrete("weight_decay", (0, 1e-3, 1e-2))

#: Smoke search spaces: the smoke model is tiny and fixed, so only fine-tune parameters. No
#: dropout (``drop_rate``): the tiny model underfits, and each of five medium-res 1500-step
#: trials with drop_rate 0.014-0.097 lost to the defaults (val_score 0.091-0.113 against 0.085).
#: Air pollution keeps its modulation heads and linear-space loss (production searches both):
#: over 1500 steps each of its four trials with modulation_heads=off or log_space_loss=on lost
#: by 21-63 % (val_score 0.400-0.539 against the defaults' 0.330).
SMOKE_SPACES: dict[str, SearchSpace] = {
    "medium-res": _space(
        _SMOKE_LR, _SMOKE_T0, _SMOKE_WD,
        double("drop_path", 0.0, 0.05),
        categorical("lora_mode", ("single", "from_second", "all")),
        integer("lora_steps", 20, 60),
    ),
    "high-res": _space(
        _SMOKE_LR, _SMOKE_T0, _SMOKE_WD,
        double("drop_path", 0.0, 0.05),
        discrete("max_history_size", (2, 3)),
    ),
    "air-pollution": _space(
        _SMOKE_LR, _SMOKE_T0, _SMOKE_WD,
        double("drop_path", 0.0, 0.05),
        categorical("lora_mode", ("single", "from_second")),
    ),
    "ocean-waves": _space(
        _SMOKE_LR, _SMOKE_T0, _SMOKE_WD,
        categorical("lora_mode", ("from_second", "all")),
        double("drop_path", 0.0, 0.05),
        double("spectral_loss_weight", 0.0, 0.1),
    ),
}


#: Smoke spaces of the augmentation sweeps (``katib/smoke/<variant>-augment.yaml``): the smoke
#: space and the augmentation's ranges. Kept apart from :data:`SMOKE_SPACES`, whose halving
#: sweep ``make run`` runs unchanged. Narrower than production's: the tiny model's
#: 6-hour error is a fraction of one standard deviation, so input noise soon swamps it.
AUGMENT_SPACES: dict[str, SearchSpace] = {
    variant: _space(
        *space.parameters,
        categorical("augment_lon_roll", _ON_OFF),
        double("augment_wind_rotation", 0.0, 20.0),
        double("augment_noise", 0.0, 0.05),
        discrete("augment_event_repeat", (1, 2, 3)),
    )
    for variant, space in SMOKE_SPACES.items()
}


def get_space(variant: str, profile: Literal["smoke", "production"] = "production", *,
              augment: bool = False) -> SearchSpace:
    """The search space of ``variant`` for ``profile`` (``augment``: the smoke augmentation
    sweep's).

    Raises:
        KeyError: Unknown variant (the message lists the valid ones).
    """
    table = (AUGMENT_SPACES if augment else SMOKE_SPACES) if profile == "smoke" else SPACES
    try:
        return table[variant]
    except KeyError:
        raise KeyError(f"no search space for variant {variant!r}; choose one of "
                       f"{', '.join(table)}") from None
