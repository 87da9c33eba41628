"""Physics-aware augmentation of training windows: opt-in trial parameters, all off by default.

Each micro-batch of training windows (never a validation window) may be changed, in this order:

- ``augment_lon_roll``: on a global grid (its longitudes span 360 degrees, so the east edge
  meets the west edge) every field, static ones included, is rolled by one random number of
  columns: the same planet, shifted under the model's longitude encoding. Latitude is not
  periodic and is never rolled. A regional grid is left as it is.
- ``augment_crop``: on a regional grid, a random window of the longitudes (a multiple of the
  patch size, at most this fraction narrower). Latitude is kept whole, because the loss weights
  every row by its cos(latitude) once per trial. A global grid is left as it is.
- ``augment_wind_rotation``: every wind vector (``10u``/``10v``, ``u``/``v``,
  ``10u_wave``/``10v_wave``) of a window, inputs and targets alike, turns by one random angle up
  to this many degrees, which keeps every speed; wave directions (``mwd`` and the other angle
  variables) turn with the wind and stay in ``[0, 360)``.
- ``augment_noise``: Gaussian noise on the inputs (not the targets), scaled by each variable's
  training standard deviation (per level). Positive variables (species, wave heights and
  periods, wind speed) get the noise as a factor ``exp(noise * std / mean)``, so zero stays
  zero and a positive value stays positive; angles wrap into ``[0, 360)``; everything else is
  clipped to its physical range (:data:`aurora_mlops.variables.VARIABLES`). Missing points stay
  missing.
- ``augment_event_repeat``: the quarter of training windows whose targets hold the most
  events (points above the training split's 90th percentile of the variant's event field, as
  the validation score counts them) come that many times in each pass of the data order.

Random numbers come from a generator seeded with the trial's seed, the rank and the global
index of the micro-batch, never from a global generator, so a resumed trial draws exactly what
an uninterrupted one drew, and a trial with every augmentation off is the trial it always was.
A window step of several model steps (temporal stride jitter) is not offered: Aurora embeds the
lead time as its own ``timestep`` (``aurora/model/aurora.py``, ``lead_times`` from
``self.timestep`` unless ``variable_lead_time``), so a window twice as long would teach the
model a 12-hour change under a 6-hour label.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aurora_mlops.training._loss import event_field
from aurora_mlops.training._params import TrialParams
from aurora_mlops.variables import VARIABLES
from aurora_mlops.variants import VariantSpec

if TYPE_CHECKING:
    from aurora import Batch

    from aurora_mlops.data import NormStats, WindowDataset

log = logging.getLogger(__name__)

__all__ = [
    "AUGMENT_PARAMS",
    "EVENT_WINDOW_SHARE",
    "WIND_PAIRS",
    "Augmentation",
    "exceedance_share",
    "is_global",
    "mapped_batches",
    "rotate_direction",
]

#: The trial parameters of this module, and the value of each that turns it off.
AUGMENT_PARAMS: dict[str, Any] = {
    "augment_lon_roll": False,
    "augment_crop": 0.0,
    "augment_wind_rotation": 0.0,
    "augment_noise": 0.0,
    "augment_event_repeat": 1,
}
#: ``(group, eastward, northward)`` wind components that turn together.
WIND_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("surf", "10u", "10v"), ("atmos", "u", "v"), ("surf", "10u_wave", "10v_wave"),
)
#: The share of training windows ``augment_event_repeat`` repeats (those richest in events).
EVENT_WINDOW_SHARE = 0.25
Targets = dict[str, dict[str, torch.Tensor]]
Fields = dict[str, dict[str, torch.Tensor]]


def is_global(lon: torch.Tensor) -> bool:
    """Whether equally spaced longitudes ``lon`` (degrees) go round the globe."""
    n = len(lon)
    if n < 2:
        return False
    step = float(lon[1] - lon[0])
    return math.isclose(step * n, 360.0, rel_tol=1e-3)


def exceedance_share(field: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per time step of ``field`` ``(time, lat, lon)``, the share of its points (missing
    ones left out) above ``threshold``."""
    finite = ~torch.isnan(field)
    above = (torch.nan_to_num(field, nan=-math.inf) > threshold) & finite
    return above.flatten(1).sum(1).double() / finite.flatten(1).sum(1).clamp(min=1)


def rotate_direction(direction: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """A compass direction (degrees clockwise from north) after its vector turns ``degrees``
    anticlockwise, in ``[0, 360)``. NaN stays NaN."""
    return _wrap(direction - degrees)


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    out = torch.remainder(angle, 360.0)
    # A tiny negative angle's remainder rounds up to 360.0 in float32.
    return torch.where(out >= 360.0, out - 360.0, out)


def _generator(seed: int, rank: int, micro_batch: int,
               device: torch.device | str = "cpu") -> torch.Generator:
    """A generator of its own for one micro-batch of one rank (see the module docstring), on
    the batch's ``device``: the noise of a production batch (10^8 numbers) is drawn where it
    is added, not on the CPU and copied."""
    words = np.random.SeedSequence([seed, rank, micro_batch, 0x41554721]).generate_state(2)
    return torch.Generator(device=device).manual_seed(int(words[0]) << 31 ^ int(words[1]))


def _map_fields(fields: Fields, fn: Any) -> Fields:
    return {g: {k: fn(g, k, v) for k, v in d.items()} for g, d in fields.items()}


@dataclass(frozen=True)
class Augmentation:
    """A trial's augmentation settings with what they need from its data.

    Attributes:
        variant: The trained variant.
        params: The trial's parameters (the ``augment_*`` fields are read).
        stats: The training split's normalisation statistics (the noise's scale).
        threshold: The training split's event threshold (which windows hold an event).
    """

    variant: VariantSpec
    params: TrialParams
    stats: NormStats
    threshold: float

    @classmethod
    def of(cls, variant: VariantSpec, params: TrialParams, stats: NormStats,
           threshold: float) -> Augmentation | None:
        """The trial's augmentation, or ``None`` when every ``augment_*`` parameter is off."""
        if all(getattr(params, k) == off for k, off in AUGMENT_PARAMS.items()):
            return None
        return cls(variant, params, stats, threshold)

    # The data order ------------------------------------------------------------------------
    def event_windows(self, train: WindowDataset) -> list[int]:
        """Indices of the training windows richest in events: the :data:`EVENT_WINDOW_SHARE`
        of them whose targets have the largest share of points above the event threshold.

        Some point of almost every window exceeds the training split's 90th percentile, so
        "holds an event" ranks windows by how much of the grid does. Reads only the event
        variables of the split."""
        start = train.first - train.history + 1
        stop = train.last + train.rollout_steps + 1
        part = train.dataset.isel(time=slice(start, stop))
        surf = {n: torch.from_numpy(np.asarray(part[n].transpose("time", "lat", "lon").values,
                                               dtype=np.float32))
                for n in self.variant.event_inputs}
        share = exceedance_share(event_field(self.variant.name, surf), self.threshold)
        lead = train.history  # the first target of window k is split step k + history
        per_window = torch.stack([share[k + lead: k + lead + train.rollout_steps].mean()
                                  for k in range(len(train))])
        bar = torch.quantile(per_window, 1 - EVENT_WINDOW_SHARE)
        return [k for k in range(len(train)) if bool(per_window[k] >= bar)]

    def window_order(self, train: WindowDataset) -> list[int]:
        """One pass of the data order's windows: each once, event windows
        ``augment_event_repeat`` times."""
        globe = is_global(train.lon)
        if self.params.augment_crop > 0 and globe:
            log.info("augment_crop does nothing here: the grid is global (its roll is "
                     "augment_lon_roll)")
        if self.params.augment_lon_roll and not globe:
            log.info("augment_lon_roll does nothing here: the grid is regional (its crop is "
                     "augment_crop)")
        order = list(range(len(train)))
        repeat = self.params.augment_event_repeat
        if repeat > 1:
            events = self.event_windows(train)
            log.info("%d of %d training windows hold an event; each comes %d times a pass",
                     len(events), len(order), repeat)
            order += [k for k in events for _ in range(repeat - 1)]
        return order

    # The batches ---------------------------------------------------------------------------
    def batches(
        self, inner: Generator[tuple[Batch, Targets], None, None], *, start: int, rank: int,
        patch_size: int,
    ) -> Generator[tuple[Batch, Targets], None, None]:
        """``inner``'s micro-batches augmented, the first one being global micro-batch
        ``start``; closing this closes ``inner`` (and the DataLoader's workers)."""
        try:
            for index, (batch, targets) in enumerate(inner, start):
                device = next(iter(batch.surf_vars.values())).device
                gen = _generator(self.params.seed, rank, index, device)
                yield self.apply(batch, targets, gen, patch_size)
        finally:
            inner.close()

    def apply(self, batch: Batch, targets: Targets, gen: torch.Generator,
              patch_size: int) -> tuple[Batch, Targets]:
        """One micro-batch augmented with the random numbers of ``gen``."""
        inputs: Fields = {"surf": dict(batch.surf_vars), "atmos": dict(batch.atmos_vars)}
        static, lon = dict(batch.static_vars), batch.metadata.lon
        columns = self._columns(lon, gen, patch_size)
        if columns is not None:
            inputs, targets = (_map_fields(f, lambda _g, _k, v: v[..., columns.to(v.device)])
                               for f in (inputs, targets))
            static = {k: v[..., columns.to(v.device)] for k, v in static.items()}
            if not is_global(lon):  # a crop: the window's own longitudes
                lon = lon[columns.to(lon.device)]
        if self.params.augment_wind_rotation > 0:
            b = next(iter(inputs["surf"].values())).shape[0]
            angle = torch.rand(b, generator=gen, dtype=torch.float64, device=gen.device) * 2 - 1
            angle = angle * self.params.augment_wind_rotation
            inputs, targets = (self._rotate(f, angle) for f in (inputs, targets))
        if self.params.augment_noise > 0:
            inputs = self._noisy(inputs, batch.metadata.atmos_levels, gen)
        metadata = dataclasses.replace(batch.metadata, lon=lon)
        out = dataclasses.replace(batch, surf_vars=inputs["surf"], atmos_vars=inputs["atmos"],
                                  static_vars=static, metadata=metadata)
        return out, targets

    def _columns(self, lon: torch.Tensor, gen: torch.Generator,
                 patch_size: int) -> torch.Tensor | None:
        """The longitude columns to take, in order (a roll or a crop), or ``None``."""
        w = len(lon)
        if is_global(lon):
            if not self.params.augment_lon_roll:
                return None
            shift = int(torch.randint(w, (1,), generator=gen, device=gen.device))
            return torch.roll(torch.arange(w), shift)
        if self.params.augment_crop <= 0:
            return None
        narrowest = max(patch_size, math.ceil(w * (1 - self.params.augment_crop) / patch_size)
                        * patch_size)
        widths = list(range(narrowest, w + 1, patch_size))
        width = widths[int(torch.randint(len(widths), (1,), generator=gen, device=gen.device))]
        offset = int(torch.randint(w - width + 1, (1,), generator=gen, device=gen.device))
        return torch.arange(offset, offset + width)

    def _rotate(self, fields: Fields, degrees: torch.Tensor) -> Fields:
        """``fields`` with every wind vector turned anticlockwise by ``degrees[b]`` and every
        direction variable turned with it (speed kept)."""
        out = {g: dict(d) for g, d in fields.items()}
        for group, east, north in WIND_PAIRS:
            if east not in out[group] or north not in out[group]:
                continue
            u, v = out[group][east], out[group][north]
            rad = torch.deg2rad(degrees).to(u.device)
            cos, sin = (_per_sample(x, u) for x in (torch.cos(rad), torch.sin(rad)))
            u64, v64 = u.double(), v.double()
            out[group][east] = (u64 * cos - v64 * sin).to(u.dtype)
            out[group][north] = (u64 * sin + v64 * cos).to(v.dtype)
        for name, value in out["surf"].items():
            if _spec("surf", name).angle:
                turn = _per_sample(degrees.to(value.device), value)
                out["surf"][name] = rotate_direction(value.double(), turn).to(value.dtype)
        return out

    def _noisy(self, inputs: Fields, levels: tuple[int, ...], gen: torch.Generator) -> Fields:
        """``inputs`` with noise kept inside each variable's physical range."""
        sigma = self.params.augment_noise

        def noisy(group: str, name: str, x: torch.Tensor) -> torch.Tensor:
            spec = _spec(group, name)
            mean, std = self._moments(group, name, levels, x)
            eps = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=gen.device)
            eps = eps.to(x.device)
            if spec.positive:
                scale = (std / mean.abs().clamp(min=1e-30)).clamp(max=1.0)
                out = x * torch.exp(sigma * scale * eps)
            elif spec.angle:
                return _wrap(x.double() + sigma * std * eps).to(x.dtype)
            else:
                out = x + sigma * std * eps
            return out.clamp(spec.valid_min, spec.valid_max)

        return _map_fields(inputs, noisy)

    def _moments(self, group: str, name: str, levels: tuple[int, ...],
                 like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training mean and standard deviation, shaped to broadcast over ``like``."""
        keys = [name] if group == "surf" else [f"{name}_{lv}" for lv in levels]
        shape = (1, 1, 1) if group == "surf" else (len(levels), 1, 1)
        mean = [self.stats.mean[k] for k in keys]
        std = [self.stats.std[k] for k in keys]
        return (torch.tensor(mean, dtype=like.dtype, device=like.device).reshape(shape),
                torch.tensor(std, dtype=like.dtype, device=like.device).reshape(shape))


def _spec(group: str, name: str) -> Any:
    return VARIABLES[(group, name)]  # type: ignore[index]


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` of shape ``(b,)`` shaped to broadcast over ``like`` ``(b, ...)``."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def mapped_batches(batches: Iterable[list[int]], order: list[int]) -> Iterator[list[int]]:
    """``batches`` of positions in ``order`` as window indices."""
    for batch in batches:
        yield [order[i] for i in batch]
