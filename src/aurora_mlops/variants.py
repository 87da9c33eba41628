"""The variant registry: one frozen :class:`VariantSpec` per Aurora variant.

``VARIANTS["medium-res"]`` and friends hold every fact about a variant that other steps need
(Aurora class, published checkpoint, timestep, variables, levels, production and smoke
configurations, GPU needs). :func:`build_model` turns a spec plus overrides into the real
``aurora`` model; :func:`load_weights` loads a local or published checkpoint into it.

Importing this module is cheap: ``aurora`` and ``torch`` are imported inside the functions.
"""

from __future__ import annotations

import inspect
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aurora_mlops.errors import CheckpointError, ConfigError
from aurora_mlops.variables import STANDARD_LEVELS, VARIABLES, VariableSpec

if TYPE_CHECKING:
    import torch

__all__ = [
    "VARIANTS",
    "WAVE_VARS",
    "Profile",
    "VariantSpec",
    "build_model",
    "get_variant",
    "load_weights",
    "model_knobs",
]

log = logging.getLogger(__name__)

Profile = Literal["smoke", "production"]

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

    def config(self, profile: Profile) -> dict[str, Any]:
        """Constructor keyword arguments of the ``profile`` model (a fresh dict)."""
        return dict(self.smoke if profile == "smoke" else self.production)

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
    "swh",
    "mwd",
    "mwp",
    "pp1d",
    "shww",
    "mdww",
    "mpww",
    "shts",
    "mdts",
    "mpts",
    "swh1",
    "mwd1",
    "mwp1",
    "swh2",
    "mwd2",
    "mwp2",
    "wind",
    "10u_wave",
    "10v_wave",
)
#: Wave variables with a density channel: ``AuroraWave`` predicts NaN where it sees no waves.
WAVE_VARS: frozenset[str] = frozenset(_WAVE_SURF)
_SPECIES_SURF = ("pm1", "pm2p5", "pm10", "tcco", "tc_no", "tcno2", "gtco3", "tcso2")
_SPECIES_ATMOS = ("co", "no", "no2", "go3", "so2")
_EMISSIONS = tuple(
    f"static_{s}{sfx}" for s in ("ammonia", "co", "nox", "so2") for sfx in ("", "_log")
)

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
            node_pool=NodePool(
                gpu_type="nvidia-a100-80gb",
                gpus_per_trial=1,
                gpu_memory_gib=40.0,
                cpu="8",
                memory="64Gi",
            ),
            description=(
                "Global weather at 0.25 degrees, 6-hourly, fine-tuned on ERA5 and IFS HRES T0."
            ),
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
            smoke={**_SMOKE_CONFIG, "patch_size": 10},
            smoke_grid=(40, 80),
            node_pool=NodePool(
                gpu_type="nvidia-h100-80gb",
                gpus_per_trial=4,
                gpu_memory_gib=75.0,
                cpu="32",
                memory="256Gi",
            ),
            description="Global weather at 0.1 degrees, 6-hourly, fine-tuned on IFS HRES analysis.",
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
            smoke={
                **_SMOKE_CONFIG,
                "patch_size": 3,
                "surf_stats": {
                    f"static_{s}_log": (-27.0, 5.0) for s in ("co", "nox", "so2", "ammonia")
                },
            },
            smoke_grid=(36, 72),
            min_history=2,
            node_pool=NodePool(
                gpu_type="nvidia-a100-80gb",
                gpus_per_trial=1,
                gpu_memory_gib=60.0,
                cpu="8",
                memory="96Gi",
            ),
            description="Atmospheric chemistry at 0.4 degrees, 12-hourly, fine-tuned on CAMS.",
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
            smoke={**_SMOKE_CONFIG, "surf_stats": {"wmb": (0.0, 1000.0)}},
            node_pool=NodePool(
                gpu_type="nvidia-a100-80gb",
                gpus_per_trial=1,
                gpu_memory_gib=45.0,
                cpu="8",
                memory="64Gi",
            ),
            description="Ocean waves at 0.25 degrees, 6-hourly, fine-tuned on HRES-WAM.",
        ),
    )
}


def get_variant(name: str) -> VariantSpec:
    """The registered variant ``name``, or a :class:`ConfigError` listing the valid names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown variant {name!r}: choose one of {', '.join(VARIANTS)}"
        ) from None


_FIXED_CLASSES: dict[str, type[torch.nn.Module]] = {}


def _air_pollution_per_sample() -> type[torch.nn.Module]:
    """``AuroraAirPollution`` whose post-decoder hook works for batches larger than one.

    In microsoft-aurora 2.0.1 the hook adds ``pred`` of shape ``(b, 1, h, w)`` to
    ``prev[:, k]`` of shape ``(b, h, w)``, which broadcasts to ``(b, b, h, w)``: every batch of
    more than one sample comes out wrong. This subclass runs the package's own hook one sample
    at a time and stacks the results; weights and state-dict keys are unchanged.
    """
    import dataclasses

    import torch
    from aurora import AuroraAirPollution, Batch

    def take(b: Batch, i: int) -> Batch:
        return dataclasses.replace(
            b,
            surf_vars={k: v[i : i + 1] for k, v in b.surf_vars.items()},
            atmos_vars={k: v[i : i + 1] for k, v in b.atmos_vars.items()},
            metadata=dataclasses.replace(b.metadata, time=b.metadata.time[i : i + 1]),
        )

    class AuroraAirPollutionBatched(AuroraAirPollution):
        def _post_decoder_hook(self, batch: Batch, pred: Batch) -> Batch:
            n = next(iter(pred.surf_vars.values())).shape[0]
            if n == 1:
                return super()._post_decoder_hook(batch, pred)
            parts = [
                super(AuroraAirPollutionBatched, self)._post_decoder_hook(
                    take(batch, i), take(pred, i)
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


def _wave_with_density_outputs() -> type[torch.nn.Module]:
    """``AuroraWave`` that keeps, per forward pass, what its post-decoder hook throws away.

    The package's hook turns each wave variable's density logit into a NaN mask ("no waves")
    and deletes the logit, so a loss on the returned prediction can neither train the density
    channel nor pass gradients through masked points. When ``wave_aux`` is a list (the trainer
    sets it), every forward pass appends ``{name: (raw_prediction, density_logit)}`` with the
    values before masking. Predictions, weights and state-dict keys are unchanged.
    """
    import torch
    from aurora import AuroraWave, Batch
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


def _aurora_class(spec: VariantSpec) -> type[torch.nn.Module]:
    import aurora

    if spec.aurora_class == "AuroraAirPollution":
        if "air" not in _FIXED_CLASSES:
            _FIXED_CLASSES["air"] = _air_pollution_per_sample()
        return _FIXED_CLASSES["air"]
    if spec.aurora_class == "AuroraWave":
        if "wave" not in _FIXED_CLASSES:
            _FIXED_CLASSES["wave"] = _wave_with_density_outputs()
        return _FIXED_CLASSES["wave"]
    cls: type[torch.nn.Module] = getattr(aurora, spec.aurora_class)
    return cls


def model_knobs(spec: VariantSpec) -> dict[str, inspect.Parameter]:
    """Every keyword the variant's Aurora class accepts, read from the real constructors."""
    knobs: dict[str, inspect.Parameter] = {}
    for klass in _aurora_class(spec).__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for pname, param in inspect.signature(init).parameters.items():
            if param.kind == inspect.Parameter.KEYWORD_ONLY or (
                param.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and pname != "self"
            ):
                knobs.setdefault(pname, param)
    return knobs


def _coerce(value: Any, default: Any) -> Any:
    """Lists become tuples where the constructor default is a tuple (YAML/JSON give lists)."""
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value


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
    kwargs = spec.config(profile)
    kwargs.update(overrides)
    kwargs = {k: _coerce(v, knobs[k].default) for k, v in kwargs.items()}
    try:
        model = _aurora_class(spec)(**kwargs)
    except (TypeError, ValueError, AssertionError) as e:
        raise ConfigError(
            f"variant {spec.name}: {spec.aurora_class} rejected the configuration "
            f"{sorted(kwargs.items())}: {e}"
        ) from e
    return model


def load_weights(
    model: torch.nn.Module,
    spec: VariantSpec,
    source: str | Path,
    *,
    strict: bool = True,
) -> None:
    """Load weights into ``model`` from a local file or from the model hub.

    Args:
        model: A model built by :func:`build_model` for ``spec``.
        spec: Its variant.
        source: A local checkpoint path, or ``hub`` / ``hub:<repo>/<name>`` for the published
            weights through ``aurora``'s own ``load_checkpoint`` (needs network access).
        strict: Demand that every parameter is present on both sides.

    Raises:
        CheckpointError: The file is missing or unreadable, or its tensors do not fit the model
            (the message names the first parameter that differs and both shapes).
    """
    source = str(source)
    try:
        if source == "hub" or source.startswith("hub:"):
            repo, name = spec.checkpoint_repo, spec.checkpoint_name
            if source.startswith("hub:"):
                repo, _, name = source[4:].rpartition("/")
            model.load_checkpoint(repo, name, strict=strict)  # type: ignore[operator]
            return
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
        if spec.aurora_class == "AuroraAirPollution":
            # The package's adapter for this class rewrites keys of published checkpoints and
            # needs all 13 levels; our own checkpoints are plain state dicts.
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=strict)
        else:
            model.load_checkpoint_local(str(path), strict=strict)  # type: ignore[operator]
    except CheckpointError:
        raise
    except (
        RuntimeError,
        KeyError,
        AssertionError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
    ) as e:
        raise CheckpointError(
            f"checkpoint {source} does not fit variant {spec.name}: {_first_line(e)}"
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
