"""The variant registry: one frozen :class:`VariantSpec` per Aurora variant.

``VARIANTS["medium-res"]`` and friends hold every fact about a variant that other steps need
(Aurora class, published checkpoint, timestep, variables, levels, production and smoke
configurations, GPU needs, optional loss terms and inputs, events, headline variables): a new
variant is one new entry. :func:`build_model` turns a spec plus overrides into the real
``aurora`` model; :func:`load_weights` loads a local or published checkpoint into it.

Importing this module is cheap: ``aurora`` and ``torch`` are imported inside the functions.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aurora_mlops._aurora_classes import aurora_class
from aurora_mlops._checkpoints import load_weights
from aurora_mlops.errors import ConfigError
from aurora_mlops.variables import STANDARD_LEVELS, VARIABLES, VariableSpec

if TYPE_CHECKING:
    import torch

__all__ = [
    "VARIANTS",
    "WAVE_VARS",
    "ExtraInput",
    "LossTerm",
    "Profile",
    "VariantSpec",
    "build_model",
    "get_variant",
    "load_weights",
    "model_knobs",
    "variants_with",
]

log = logging.getLogger(__name__)

Profile = Literal["smoke", "production"]
#: Optional loss terms (see :attr:`VariantSpec.loss_terms`).
LossTerm = Literal["spectral", "log_space"]
#: Optional extra inputs (see :attr:`VariantSpec.extra_inputs`).
ExtraInput = Literal["coast_mask"]

_SMOKE_LEVELS: tuple[int, ...] = (1000, 850, 500)

#: A configuration that runs a forward and backward pass on one CPU core in well under a second.
#: ``window_size[0]`` stays below ``latent_levels`` (swin3d ``.view`` bug on small grids).
_SMOKE_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "num_heads": 4,
    "encoder_depths": (1, 1),
    "encoder_num_heads": (2, 4),
    "decoder_depths": (1, 1),
    "decoder_num_heads": (4, 2),
    "latent_levels": 2,
    "window_size": (1, 4, 8),
    "max_history_size": 2,
}


class NodePool(BaseModel):
    """What a production trial of the variant asks of a Kubernetes GPU node pool."""

    model_config = ConfigDict(frozen=True)

    gpu_type: str = Field(description="Accelerator the variant is sized for.")
    gpus_per_trial: int = Field(ge=1)
    gpu_memory_gib: float = Field(gt=0, description="Expected peak GPU memory per GPU (GiB).")
    cpu: str
    memory: str


class VariantSpec(BaseModel):
    """Everything the platform knows about one Aurora variant.

    Attributes:
        name: Registry key (``medium-res``, ``high-res``, ``air-pollution``, ``ocean-waves``).
        aurora_class: Class name in ``aurora`` (``Aurora``, ``AuroraHighRes`` ...).
        checkpoint_repo: Model hub repository of the published weights.
        checkpoint_name: File name of the published fine-tuned checkpoint.
        resolution_deg: Native grid spacing in degrees.
        timestep_hours: Model step in hours.
        surf_vars: Surface variables the model reads and predicts (Aurora's names).
        static_vars: Static variables (Aurora's names; ``z`` is stored as ``z_static``).
        atmos_vars: Pressure-level variables.
        levels: Production pressure levels (hPa).
        production: Constructor overrides of the production model (empty: the package defaults).
        smoke: Constructor overrides of the CPU-sized smoke model.
        smoke_levels: Pressure levels used with the smoke model.
        smoke_grid: ``(lat, lon)`` points of the smoke grid.
        min_history: Fewest history steps the model accepts.
        node_pool: GPU needs of a production trial.
        description: One line for model cards and reports.
        loss_terms: Optional loss terms a trial may switch on: ``spectral``
            (``--spectral_loss_weight``), ``log_space`` (``--log_space_loss``).
        extra_inputs: Optional static inputs a trial may add: ``coast_mask``
            (``--coastal_conditioning``).
        events: Event quantities the evaluation scores (names of
            :data:`aurora_mlops.evaluation.EVENTS`), where the data has their inputs.
        event_inputs: Variables of the quantity whose exceedances the trainer scores: one
            variable, or the two components of a speed.
        headline: ``(variable, level hPa or None)`` pairs that reports show first, in order.
        trial_flags: Literal ``train-trial`` flags every sweep trial of the variant runs with
            (not searched), e.g. ``--positivity=on``.
        production_flags: Literal flags production sweep trials add (``--amp=on``: bf16
            autocast pays on a GPU; on the smoke profile's CPU it slows the step down).
        smoke_flags: Literal flags smoke sweep trials add (what a from-scratch CPU model
            needs and a fine-tune of the published weights may not, e.g. loss weights).
        sweep_grid: Parameters of the production architecture grid sweep (``katib render``;
            none: no grid sweep).
        sweep_random_leave_out: Parameters the production random sweep leaves out (Katib
            cannot exclude a combination the model refuses, so they are swept elsewhere).
        smoke_sweep_grid: Parameters of the CPU smoke grid sweep (none: no smoke grid).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    aurora_class: str
    checkpoint_repo: str = "microsoft/aurora"
    checkpoint_name: str
    resolution_deg: float
    timestep_hours: int
    surf_vars: tuple[str, ...]
    static_vars: tuple[str, ...]
    atmos_vars: tuple[str, ...]
    levels: tuple[int, ...] = STANDARD_LEVELS
    production: dict[str, Any] = Field(default_factory=dict)
    smoke: dict[str, Any] = Field(default_factory=dict)
    smoke_levels: tuple[int, ...] = _SMOKE_LEVELS
    smoke_grid: tuple[int, int] = (32, 64)
    min_history: int = 1
    node_pool: NodePool
    description: str
    loss_terms: tuple[LossTerm, ...] = ()
    extra_inputs: tuple[ExtraInput, ...] = ()
    events: tuple[str, ...] = ("tp_24h", "ws10")
    event_inputs: tuple[str, ...] = Field(default=("10u", "10v"), min_length=1, max_length=2)
    headline: tuple[tuple[str, int | None], ...] = (("2t", None), ("msl", None), ("z", 500))
    trial_flags: tuple[str, ...] = ()
    production_flags: tuple[str, ...] = ()
    smoke_flags: tuple[str, ...] = ()
    sweep_grid: tuple[str, ...] = ()
    sweep_random_leave_out: tuple[str, ...] = ()
    smoke_sweep_grid: tuple[str, ...] = ()

    def config(self, profile: Profile) -> dict[str, Any]:
        """Constructor keyword arguments of the ``profile`` model (a fresh dict)."""
        return dict(self.smoke if profile == "smoke" else self.production)

    def flags(self, profile: Profile) -> tuple[str, ...]:
        """Literal ``train-trial`` flags of the variant's ``profile`` sweep trials."""
        return self.trial_flags + (self.production_flags if profile == "production"
                                   else self.smoke_flags)

    def pressure_levels(self, profile: Profile) -> tuple[int, ...]:
        """Pressure levels (hPa) used with the ``profile`` model."""
        return self.smoke_levels if profile == "smoke" else self.levels

    def variables(self) -> list[VariableSpec]:
        """The :class:`VariableSpec` of every variable the variant needs, surface first."""
        return (
            [VARIABLES[("surf", n)] for n in self.surf_vars]
            + [VARIABLES[("atmos", n)] for n in self.atmos_vars]
            + [VARIABLES[("static", n)] for n in self.static_vars]
        )


_WEATHER_SURF = ("2t", "10u", "10v", "msl")
_WEATHER_STATIC = ("lsm", "z", "slt")
_WEATHER_ATMOS = ("z", "u", "v", "t", "q")
_WAVE_SURF = (
    "swh", "mwd", "mwp", "pp1d", "shww", "mdww", "mpww", "shts", "mdts", "mpts", "swh1", "mwd1",
    "mwp1", "swh2", "mwd2", "mwp2", "wind", "10u_wave", "10v_wave",
)
#: Wave variables with a density channel: ``AuroraWave`` predicts NaN where it sees no waves.
WAVE_VARS: frozenset[str] = frozenset(_WAVE_SURF)
_SPECIES_SURF = ("pm1", "pm2p5", "pm10", "tcco", "tc_no", "tcno2", "gtco3", "tcso2")
_SPECIES_ATMOS = ("co", "no", "no2", "go3", "so2")
_EMISSIONS = tuple(
    f"static_{s}{sfx}" for s in ("ammonia", "co", "nox", "so2") for sfx in ("", "_log")
)

#: The smoke model's normalisation ``(location, scale)`` of the pressure-level species: a
#: typical CAMS mass mixing ratio (kg kg-1) at each smoke level. Aurora's own scales are
#: 10-1000x these (co_850: 3.8e-6), so a from-scratch model's output noise alone swamped the
#: signal. Location 0: Aurora clamps the normalised species at zero. Not typical: SO2 at 1000
#: and 850 hPa, where with LoRA on Aurora clips the normalised prediction to 1, so the scale is
#: the highest SO2 forecast. The typical values (1e-9, 3e-10) capped it far below the synthetic
#: plumes (80x below their 99.9th percentile on the former 36 x 72 grid, 150-160x on 24 x 48)
#: and every fit had the same SO2 error. The scale sits just above that percentile (seed 1's
#: plumes on 24 x 48: 1.6e-7 at 1000 hPa, 4.6e-8 at 850): on 36 x 72, 1e-7/3e-8 cut the
#: defaults' val_score by 19 % over three seeds (README, "Performance targets"), scales further
#: above the plumes gained less (1.5e-7/5e-8 9 %, 2e-7/6e-8 2 %, 2.5e-7/8e-8 nothing) and
#: scales below them clip the plumes.
_SPECIES_ATMOS_STATS: dict[str, tuple[float, float]] = {
    f"{var}_{level}": (0.0, typical)
    for var, per_level in {
        "co": (1.5e-7, 1.2e-7, 1e-7),
        "no": (5e-10, 5e-11, 1e-11),
        "no2": (1e-9, 2e-10, 5e-11),
        "so2": (2e-7, 6e-8, 5e-11),
        "go3": (5e-8, 6e-8, 8e-8),
    }.items()
    for level, typical in zip(_SMOKE_LEVELS, per_level, strict=True)
}

VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec(
            name="medium-res",
            aurora_class="Aurora",
            checkpoint_name="aurora-0.25-finetuned.ckpt",
            resolution_deg=0.25,
            timestep_hours=6,
            surf_vars=_WEATHER_SURF,
            static_vars=_WEATHER_STATIC,
            atmos_vars=_WEATHER_ATMOS,
            smoke=dict(_SMOKE_CONFIG),
            node_pool=NodePool(gpu_type="nvidia-a100-80gb", gpus_per_trial=1, gpu_memory_gib=40.0,
                               cpu="8", memory="64Gi"),
            description=(
                "Global weather at 0.25 degrees, 6-hourly, fine-tuned on ERA5 and IFS HRES T0."
            ),
            sweep_grid=("encoder_depths", "embed_dim", "mlp_ratio"),
            # Katib cannot exclude embed_dim=512 with num_heads=12, so embed_dim is swept in
            # the grid (num_heads stays 16 there) and num_heads in the random sweep.
            sweep_random_leave_out=("embed_dim",),
            smoke_sweep_grid=("weight_decay", "lora_mode"),
        ),
        VariantSpec(
            name="high-res",
            aurora_class="AuroraHighRes",
            checkpoint_name="aurora-0.1-finetuned.ckpt",
            resolution_deg=0.1,
            timestep_hours=6,
            surf_vars=_WEATHER_SURF,
            static_vars=_WEATHER_STATIC,
            atmos_vars=_WEATHER_ATMOS,
            # Patch 5 on the 40x80 smoke grid gives 8x16 tokens like medium-res; the real
            # patch of 10 left 4x8 tokens of 32 channels, each decoding 10x10 points of every
            # variable, and the model lost to persistence on 79 % of targets.
            smoke={**_SMOKE_CONFIG, "patch_size": 5},
            smoke_grid=(40, 80),
            node_pool=NodePool(gpu_type="nvidia-h100-80gb", gpus_per_trial=4, gpu_memory_gib=75.0,
                               cpu="32", memory="256Gi"),
            description="Global weather at 0.1 degrees, 6-hourly, fine-tuned on IFS HRES analysis.",
            # Not on the smoke CPU: autocast's casts around the tiny model's many small
            # matrices made its step 1.8x slower (bench/bench_trial_speed.py).
            production_flags=("--amp=on",),
            sweep_grid=("patch_size", "encoder_depths", "embed_dim"),
            sweep_random_leave_out=("embed_dim",),
            smoke_sweep_grid=("weight_decay", "max_history_size"),
        ),
        VariantSpec(
            name="air-pollution",
            aurora_class="AuroraAirPollution",
            checkpoint_name="aurora-0.4-air-pollution.ckpt",
            resolution_deg=0.4,
            timestep_hours=12,
            surf_vars=_WEATHER_SURF + _SPECIES_SURF,
            static_vars=_WEATHER_STATIC + _EMISSIONS,
            atmos_vars=_WEATHER_ATMOS + _SPECIES_ATMOS,
            # As for the waves' bathymetry: Aurora normalises the log emission fields (about
            # -34 to -18) with scale 1, which a from-scratch model does not survive (first
            # species predictions ~100x too spread). The smoke model centres and scales them.
            # Aurora's CAMS scales of the surface species are ~100x their typical values
            # (pm2p5: 2.3e-6 kg m-3), so a from-scratch model's output noise alone was ~100x
            # the signal; the smoke model scales them to typical values. Positive species are
            # clamped at the first step too: unclamped, the first lead came out negative and
            # 80x worse than persistence while later leads (clamped by Aurora) did not.
            smoke={
                **_SMOKE_CONFIG,
                "patch_size": 3,
                "clamp_at_first_step": True,
                "surf_stats": {
                    **{f"static_{s}_log": (-27.0, 5.0) for s in ("co", "nox", "so2", "ammonia")},
                    "pm1": (0.0, 1e-8), "pm2p5": (0.0, 1.5e-8), "pm10": (0.0, 3e-8),
                    "tcco": (0.0, 1e-3), "tc_no": (0.0, 5e-7), "tcno2": (0.0, 3e-6),
                    "tcso2": (0.0, 5e-6),
                },
                "atmos_stats": _SPECIES_ATMOS_STATS,
            },
            # Patch 3 on 24 x 48 gives 8 x 16 tokens, medium-res's: on 36 x 72 (12 x 24 tokens)
            # a smoke step took 1.7x as long, and make run's sweep kept the same floors on both
            # (persistence beaten on 89 % of targets against 94 %, every headline ratio lower).
            smoke_grid=(24, 48),
            min_history=2,
            node_pool=NodePool(gpu_type="nvidia-a100-80gb", gpus_per_trial=1, gpu_memory_gib=60.0,
                               cpu="8", memory="96Gi"),
            description="Atmospheric chemistry at 0.4 degrees, 12-hourly, fine-tuned on CAMS.",
            loss_terms=("log_space",),
            events=("tp_24h", "ws10", "pm2p5"),
            event_inputs=("pm2p5",),
            headline=(("pm2p5", None), ("pm10", None), ("tcno2", None)),
            trial_flags=("--positivity=on",),
            sweep_grid=("patch_size", "separate_perceiver"),
            smoke_sweep_grid=("weight_decay", "lora_mode"),
        ),
        VariantSpec(
            name="ocean-waves",
            aurora_class="AuroraWave",
            checkpoint_name="aurora-0.25-wave.ckpt",
            resolution_deg=0.25,
            timestep_hours=6,
            surf_vars=_WEATHER_SURF + _WAVE_SURF,
            static_vars=(*_WEATHER_STATIC, "wmb", "lat_mask"),
            atmos_vars=_WEATHER_ATMOS,
            # Aurora normalises the bathymetry `wmb` (metres, up to ~10 km) with location 0 and
            # scale 1: the published weights are used to that, a model trained from scratch
            # is not (its first predictions are ~100x off). The smoke model scales it to km.
            # A wider smoke model: 23 surface variables (with their density, sine and cosine
            # channels, 47 in all) share each token; 32 channels won 37 % of the targets
            # against persistence (swh 0.30 m vs 0.13 m at 6 h), 48 win 43 % (swh 0.25 m),
            # 64 win 49 % but take 1.2 M parameters.
            smoke={**_SMOKE_CONFIG, "embed_dim": 48, "surf_stats": {"wmb": (0.0, 1000.0)}},
            node_pool=NodePool(gpu_type="nvidia-a100-80gb", gpus_per_trial=1, gpu_memory_gib=45.0,
                               cpu="8", memory="64Gi"),
            description="Ocean waves at 0.25 degrees, 6-hourly, fine-tuned on HRES-WAM.",
            loss_terms=("spectral",),
            extra_inputs=("coast_mask",),
            events=("tp_24h", "ws10", "swh"),
            event_inputs=("swh",),
            headline=(("swh", None), ("mwp", None), ("mwd", None)),
            # The mean wave period and direction change little in 6 h, and unweighted a smoke
            # model lost to persistence on both at the first lead in every sweep (mwp 1.36x,
            # mwd 1.13-1.20x). Weighted, three 900-step fits gave mwp 0.95-1.02x, mwd
            # 0.89-0.96x and swh 0.72-0.77x (0.84x before), with as many targets won.
            smoke_flags=("--variable_weights=swh:4,mwp:20,mwd:12",),
            sweep_grid=("embed_dim", "mlp_ratio", "coastal_conditioning"),
            sweep_random_leave_out=("embed_dim",),
            smoke_sweep_grid=("weight_decay", "lora_mode"),
        ),
    )
}


def get_variant(name: str) -> VariantSpec:
    """The registered variant ``name``, or a :class:`ConfigError` listing the valid names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown variant {name!r}: choose one of {', '.join(VARIANTS)}"
                          ) from None


def variants_with(capability: Literal["loss_terms", "extra_inputs", "events"], item: str) -> str:
    """The names of the variants whose ``capability`` field holds ``item``, joined by "and"
    (for messages such as "--log_space_loss applies to air-pollution only")."""
    return " and ".join(n for n, v in VARIANTS.items() if item in getattr(v, capability))


def model_knobs(spec: VariantSpec) -> dict[str, inspect.Parameter]:
    """Every keyword the variant's Aurora class accepts, read from the real constructors."""
    knobs: dict[str, inspect.Parameter] = {}
    for klass in aurora_class(spec.aurora_class).__mro__:
        init = klass.__dict__.get("__init__")
        for pname, param in inspect.signature(init).parameters.items() if init else ():
            if param.kind == inspect.Parameter.KEYWORD_ONLY or (
                param.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and pname != "self"
            ):
                knobs.setdefault(pname, param)
    return knobs


def _coerce(value: Any, default: Any) -> Any:
    """Lists become tuples where the constructor default is a tuple (YAML/JSON give lists)."""
    return tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value


def build_model(
    spec: VariantSpec | str,
    overrides: Mapping[str, Any] | None = None,
    *,
    profile: Profile = "smoke",
) -> torch.nn.Module:
    """Build the real ``aurora`` model of a variant.

    Args:
        spec: The variant, or its registry name.
        overrides: Constructor keywords that replace the profile's values (``embed_dim=64``).
        profile: ``smoke`` for the CPU-sized configuration, ``production`` for the published one.

    Returns:
        The model (``torch.nn.Module``), in training mode, on the CPU.

    Raises:
        ConfigError: An override name is not a knob of the variant's class (the message lists
            the valid ones), or the class rejects a value.
    """
    spec = get_variant(spec) if isinstance(spec, str) else spec
    knobs = model_knobs(spec)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(knobs))
    if unknown:
        raise ConfigError(
            f"unknown model setting(s) {', '.join(unknown)} for variant {spec.name} "
            f"({spec.aurora_class}); valid settings are: {', '.join(sorted(knobs))}"
        )
    merged = {**spec.config(profile), **overrides}
    kwargs = {k: _coerce(v, knobs[k].default) for k, v in merged.items()}
    try:
        return aurora_class(spec.aurora_class)(**kwargs)
    except (TypeError, ValueError, AssertionError) as e:
        raise ConfigError(
            f"variant {spec.name}: {spec.aurora_class} rejected the configuration "
            f"{sorted(kwargs.items())}: {e}"
        ) from e
