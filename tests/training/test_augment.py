"""Physics-aware augmentation: on every variant's synthetic data, no augmentation leaves a
variable's physical range (positive fields stay positive, directions stay in [0, 360)), the
wind turns without changing speed, a roll is one shift of the whole planet, a crop is a window
of a regional grid; draws are reproducible from the seed and the micro-batch; only training
micro-batches are augmented; a resumed augmented trial equals an uninterrupted one."""

from __future__ import annotations

import io
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aurora_mlops.data import open_dataset, write_dataset
from aurora_mlops.training import resolve_params, resume_point, train_trial
from aurora_mlops.training._augment import (
    AUGMENT_PARAMS,
    EVENT_WINDOW_SHARE,
    WIND_PAIRS,
    Augmentation,
    _generator,
    is_global,
    rotate_direction,
)
from aurora_mlops.training._data import load_trial_data, loader_batches
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.training._loss import event_field
from aurora_mlops.variables import VARIABLES
from aurora_mlops.variants import VARIANTS, get_variant

ALL_ON: dict[str, Any] = {
    "augment_lon_roll": True, "augment_crop": 0.5, "augment_wind_rotation": 45.0,
    "augment_noise": 0.5, "augment_event_repeat": 3,
}
PATCH = {"medium-res": 4, "high-res": 5, "air-pollution": 3, "ocean-waves": 4}
CPU = torch.device("cpu")


def _setup(data: Path, variant: str, **given: Any) -> tuple[Any, Augmentation]:
    params = resolve_params("smoke", {"batch_size": 2, **given})
    spec = get_variant(variant)
    trial = load_trial_data(data, spec, params, "smoke", max(2, spec.min_history),
                            Distributed())
    assert trial.augment is not None
    return trial, trial.augment


def _batch(trial: Any, items: list[int]) -> tuple[Any, dict[str, dict[str, torch.Tensor]]]:
    params = resolve_params("smoke", {})
    patch = PATCH[trial.train.spec.name]
    return next(loader_batches(trial.train, [items], params, CPU, patch))


def _fields(batch: Any) -> dict[str, dict[str, torch.Tensor]]:
    return {"surf": batch.surf_vars, "atmos": batch.atmos_vars}


def _assert_in_bounds(fields: dict[str, dict[str, torch.Tensor]],
                      before: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
    for group, named in fields.items():
        for name, x in named.items():
            spec, ok = VARIABLES[(group, name)], ~torch.isnan(x)  # type: ignore[index]
            v = x[ok]
            assert bool((v >= spec.valid_min).all() and (v <= spec.valid_max).all()), name
            if spec.angle:
                assert bool((v >= 0).all() and (v < 360).all()), name
            if spec.positive and before is not None:
                was = before[group][name]
                assert torch.equal(torch.isnan(x), torch.isnan(was)), name
                assert bool((x[ok & (was > 0)] > 0).all()), f"{name} lost its sign"
                assert bool((x[ok & (was == 0)] == 0).all()), f"{name} left zero"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_augmentation_keeps_every_variable_inside_its_physical_bounds(
    variant: str, synthetic_data: Callable[..., Path],
) -> None:
    trial, aug = _setup(synthetic_data(variant), variant, **ALL_ON)
    batch, targets = _batch(trial, [0, 1])
    for index in range(6):
        out, out_targets = aug.apply(batch, targets, _generator(0, 0, index), PATCH[variant])
        _assert_in_bounds(_fields(out))
        _assert_in_bounds(out_targets)
        assert out.metadata.lat is batch.metadata.lat  # latitude is never moved
    # Without the roll, each input value lines up with its own before the noise.
    no_roll = Augmentation.of(trial.train.spec, trial.augment.params.model_copy(
        update={"augment_lon_roll": False, "augment_wind_rotation": 0.0}), trial.stats,
        trial.threshold)
    assert no_roll is not None
    out, _ = no_roll.apply(batch, targets, _generator(0, 0, 0), PATCH[variant])
    _assert_in_bounds(_fields(out), _fields(batch))


def _turn(before: tuple[torch.Tensor, torch.Tensor], after: tuple[torch.Tensor, torch.Tensor]
          ) -> list[float]:
    """The angle (degrees, anticlockwise) each window's wind turned, after checking that it is
    one angle at every point of the window and that every speed is kept."""
    (u, v), (u2, v2) = ((x.double() for x in pair) for pair in (before, after))
    torch.testing.assert_close(torch.hypot(u2, v2), torch.hypot(u, v), rtol=1e-5, atol=1e-4,
                               equal_nan=True)
    turn = torch.remainder(torch.rad2deg(torch.atan2(v2, u2) - torch.atan2(v, u)) + 180, 360)
    strong = torch.hypot(u, v) > 1.0
    out = []
    for b in range(u.shape[0]):
        angles = turn[b][strong[b]] - 180
        assert float(angles.max() - angles.min()) < 1e-2
        out.append(float(angles.mean()))
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_wind_turns_by_one_angle_per_window_and_keeps_its_speed(
    variant: str, synthetic_data: Callable[..., Path],
) -> None:
    trial, aug = _setup(synthetic_data(variant), variant, augment_wind_rotation=90.0)
    batch, targets = _batch(trial, [0, 1])
    out, out_targets = aug.apply(batch, targets, _generator(5, 0, 2), PATCH[variant])
    before, after = _fields(batch), _fields(out)
    turn = _turn((before["surf"]["10u"], before["surf"]["10v"]),
                 (after["surf"]["10u"], after["surf"]["10v"]))
    assert all(abs(t) <= 90 for t in turn) and abs(turn[0] - turn[1]) > 1e-3
    pairs = [(f1, f2, g, e, n) for f1, f2 in ((before, after), (targets, out_targets))
             for g, e, n in WIND_PAIRS if e in f1[g]]
    assert len(pairs) == (6 if variant == "ocean-waves" else 4)
    for f1, f2, g, e, n in pairs:  # inputs and targets, every pair: the same turn
        assert _turn((f1[g][e], f1[g][n]), (f2[g][e], f2[g][n])) == pytest.approx(turn, abs=1e-2)
    directions = [k for k in batch.surf_vars if VARIABLES[("surf", k)].angle]
    assert bool(directions) == (variant == "ocean-waves")
    for f1, f2 in ((before, after), (targets, out_targets)):
        for name in directions:  # a direction turns with the wind, clockwise on the compass
            d0, d1 = f1["surf"][name].double(), f2["surf"][name].double()
            ok = ~torch.isnan(d0)
            assert torch.equal(ok, ~torch.isnan(d1))
            assert bool(((d1[ok] >= 0) & (d1[ok] < 360)).all())
            back = torch.remainder(d0 - d1 + 180, 360) - 180
            for b, t in enumerate(turn):
                assert float((back[b][ok[b]] - t).abs().max()) < 1e-2, name
    if "wind" in batch.surf_vars:  # the waves' wind speed is no component: unchanged
        torch.testing.assert_close(out.surf_vars["wind"], batch.surf_vars["wind"], rtol=0,
                                   atol=0, equal_nan=True)


def test_a_direction_turns_and_wraps_into_0_to_360() -> None:
    d = torch.tensor([350.0, 5.0, 0.0, 180.0, float("nan")])
    got = rotate_direction(d, torch.tensor([-20.0, 10.0, 1e-6, 180.0, 3.0]))
    # 0 - 1e-6 is 360 - 1e-6, which float32 rounds to 360.0: wrapped to 0, never 360.
    assert got[:3].tolist() == pytest.approx([10.0, 355.0, 0.0], abs=1e-4)
    assert float(got[3]) == 0.0 and math.isnan(float(got[4]))
    assert bool((got[:4] < 360).all())
    # A vector pointing east (compass 90) turned 90 degrees anticlockwise points north (0).
    assert float(rotate_direction(torch.tensor(90.0), torch.tensor(90.0))) == 0.0


def test_a_global_roll_shifts_every_field_alike_and_keeps_the_coordinates(
    synthetic_data: Callable[..., Path],
) -> None:
    trial, aug = _setup(synthetic_data("medium-res"), "medium-res", augment_lon_roll=True)
    assert is_global(trial.train.lon)
    batch, targets = _batch(trial, [0, 1])
    shifts = set()
    for index in range(4):
        out, out_targets = aug.apply(batch, targets, _generator(0, 0, index), 4)
        ref = batch.surf_vars["2t"]
        shift = next(s for s in range(ref.shape[-1])
                     if torch.equal(torch.roll(ref, s, dims=-1), out.surf_vars["2t"]))
        shifts.add(shift)
        for name, x in batch.static_vars.items():
            assert torch.equal(torch.roll(x, shift, dims=-1), out.static_vars[name])
        for name, x in batch.atmos_vars.items():
            assert torch.equal(torch.roll(x, shift, dims=-1), out.atmos_vars[name])
        for name, x in targets["surf"].items():
            assert torch.equal(torch.roll(x, shift, dims=-1), out_targets["surf"][name])
        assert torch.equal(out.metadata.lon, batch.metadata.lon)
    assert len(shifts) > 1


@pytest.fixture(scope="module")
def regional(synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
             ) -> Path:
    """Medium-res synthetic data on 48 of its 64 longitudes: a regional grid."""
    ds = open_dataset(synthetic_data("medium-res")).isel(lon=slice(8, 56)).load()
    return write_dataset(ds, tmp_path_factory.mktemp("regional") / "regional.nc")


def test_a_regional_grid_is_cropped_to_a_window_of_whole_patches(regional: Path) -> None:
    trial, aug = _setup(regional, "medium-res", augment_crop=0.5, augment_lon_roll=True)
    assert not is_global(trial.train.lon)
    batch, targets = _batch(trial, [0, 1])
    widths = set()
    for index in range(8):
        out, out_targets = aug.apply(batch, targets, _generator(1, 0, index), 4)
        w = out.surf_vars["2t"].shape[-1]
        widths.add(w)
        assert w % 4 == 0 and 24 <= w <= 48
        first = int(torch.searchsorted(batch.metadata.lon, out.metadata.lon[0]))
        cols = slice(first, first + w)
        assert torch.equal(out.metadata.lon, batch.metadata.lon[cols])
        assert torch.equal(out.surf_vars["2t"], batch.surf_vars["2t"][..., cols])
        assert torch.equal(out.static_vars["lsm"], batch.static_vars["lsm"][..., cols])
        assert torch.equal(out_targets["atmos"]["z"], targets["atmos"]["z"][..., cols])
    assert len(widths) > 1


def test_noise_is_scaled_to_each_variables_spread(synthetic_data: Callable[..., Path]) -> None:
    trial, aug = _setup(synthetic_data("medium-res"), "medium-res", augment_noise=0.2)
    batch, targets = _batch(trial, [0, 1])
    out, out_targets = aug.apply(batch, targets, _generator(0, 0, 0), 4)
    for group, named in targets.items():
        for name, x in named.items():
            assert torch.equal(out_targets[group][name], x)  # targets are never noisy
    ratio = (out.surf_vars["2t"] - batch.surf_vars["2t"]).std() / trial.stats.std["2t"]
    assert float(ratio) == pytest.approx(0.2, rel=0.1)
    t850 = (out.atmos_vars["t"][:, :, 0] - batch.atmos_vars["t"][:, :, 0]).std()
    assert float(t850 / trial.stats.std[f"t_{trial.levels[0]}"]) == pytest.approx(0.2, rel=0.1)


def test_draws_depend_on_seed_rank_and_micro_batch_only(
    synthetic_data: Callable[..., Path],
) -> None:
    trial, aug = _setup(synthetic_data("medium-res"), "medium-res", **ALL_ON)
    batch, targets = _batch(trial, [0, 1])

    def draw(seed: int, rank: int, index: int) -> torch.Tensor:
        return aug.apply(batch, targets, _generator(seed, rank, index), 4)[0].surf_vars["10u"]

    state = torch.get_rng_state()
    assert torch.equal(draw(0, 0, 3), draw(0, 0, 3))
    for other in ((1, 0, 3), (0, 1, 3), (0, 0, 4)):
        assert not torch.equal(draw(0, 0, 3), draw(*other))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is never used


@pytest.mark.gpu
def test_on_a_gpu_the_draws_are_made_there_reproducibly_and_stay_in_bounds(
    synthetic_data: Callable[..., Path],
) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    device = torch.device("cuda", torch.cuda.current_device())
    trial, aug = _setup(synthetic_data("ocean-waves"), "ocean-waves", **ALL_ON)
    batch, targets = _batch(trial, [0, 1])
    batch = batch.to(device)
    targets = {g: {k: v.to(device) for k, v in d.items()} for g, d in targets.items()}
    one, two = (aug.apply(batch, targets, _generator(0, 0, 3, device), 4) for _ in range(2))
    for name, x in one[0].surf_vars.items():
        assert x.device == device
        torch.testing.assert_close(x, two[0].surf_vars[name], rtol=0, atol=0, equal_nan=True)
    _assert_in_bounds({g: {k: v.cpu() for k, v in d.items()} for g, d in _fields(one[0]).items()})


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_windows_holding_an_event_are_repeated(
    variant: str, synthetic_data: Callable[..., Path],
) -> None:
    trial, aug = _setup(synthetic_data(variant), variant, augment_event_repeat=3)
    train = trial.train
    shares = []
    for k in range(len(train)):  # window by window, from the windows' own targets
        _, _, tgt = train[k]
        field = event_field(variant, tgt["surf"]).double()
        ok = ~torch.isnan(field)
        shares.append(float((field[ok] > trial.threshold).sum() / ok.sum()))
    ranked = sorted(range(len(train)), key=lambda k: -shares[k])
    expected = aug.event_windows(train)
    assert len(expected) >= round(EVENT_WINDOW_SHARE * len(train))
    assert len(expected) < len(train) / 2
    assert set(expected) == set(ranked[:len(expected)])  # the windows richest in events
    assert min(shares[k] for k in expected) > statistics.median(shares)
    order = aug.window_order(train)
    counts = np.bincount(order, minlength=len(train))
    assert all(counts[k] == (3 if k in expected else 1) for k in range(len(train)))


def test_every_augmentation_is_off_by_default() -> None:
    params = resolve_params("smoke", {})
    assert {k: getattr(params, k) for k in AUGMENT_PARAMS} == AUGMENT_PARAMS
    assert Augmentation.of(get_variant("medium-res"), params, None, 0.0) is None  # type: ignore


# Training ------------------------------------------------------------------------------------
BASE: dict[str, Any] = {
    "steps_per_epoch": 3, "accumulation_steps": 2, "batch_size": 2, "val_windows": 2,
    "warmup_steps": 1, "t0": 4, "patience": 10, "seed": 3, **ALL_ON,
}


def _train(data: Path, out: Path, epochs: int, variant: str = "medium-res",
           **given: Any) -> dict[str, Any]:
    params = resolve_params("smoke", {**BASE, "epochs": epochs, **given})
    train_trial(variant=get_variant(variant), data=data, output_dir=out, params=params,
                profile="smoke", tracking=False, stdout=io.StringIO())
    return json.loads((out / "trial.json").read_text())


def test_only_training_micro_batches_are_augmented(
    synthetic_data: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    real = Augmentation.apply

    def spy(self: Augmentation, batch: Any, *args: Any) -> Any:
        seen.append(batch.surf_vars["2t"].shape[0])
        return real(self, batch, *args)

    monkeypatch.setattr(Augmentation, "apply", spy)
    trial = _train(synthetic_data("medium-res"), tmp_path / "t", 1)
    assert trial["params"]["augment_noise"] == ALL_ON["augment_noise"]
    # 3 steps of 2 micro-batches of 2 windows; validation's windows come through untouched.
    assert seen == [2] * 6


def test_a_regional_grid_trains_with_crops(regional: Path, tmp_path: Path) -> None:
    trial = _train(regional, tmp_path / "t", 1, steps_per_epoch=2)
    assert math.isfinite(trial["metrics"]["val_score"])


@pytest.mark.parametrize("variant", ["medium-res", "ocean-waves"])
def test_a_resumed_augmented_trial_equals_an_uninterrupted_one(
    variant: str, synthetic_data: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = synthetic_data(variant)
    full = _train(data, tmp_path / "full", 2, variant)
    _train(data, tmp_path / "part", 1, variant)

    def resume(out: Path) -> dict[str, Any]:
        params = resume_point(tmp_path / "part").params_with({"epochs": 2})
        train_trial(variant=get_variant(variant), data=data, output_dir=out, params=params,
                    profile="smoke", tracking=False, stdout=io.StringIO(),
                    resume_from=tmp_path / "part")
        return json.loads((out / "trial.json").read_text())

    resumed = resume(tmp_path / "resumed")
    assert resumed["step_losses"] == pytest.approx(full["step_losses"], rel=0, abs=1e-6)
    a, b = (torch.load(d / "model.ckpt", weights_only=True)
            for d in (tmp_path / "full", tmp_path / "resumed"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    # The draws follow the global micro-batch: counted from 0 again, the resumed trial differs.
    real = Augmentation.batches
    monkeypatch.setattr(Augmentation, "batches",
                        lambda self, inner, *, start, **kw: real(self, inner, start=0, **kw))
    other = resume(tmp_path / "restarted-draws")
    assert other["step_losses"][3:] != pytest.approx(full["step_losses"][3:], rel=0, abs=1e-6)


# Search spaces and Katib specs ---------------------------------------------------------------
def test_augmentation_is_swept_in_production_and_in_its_own_smoke_sweep_only() -> None:
    from aurora_mlops.tuning import (
        AUGMENT_SPACES,
        SMOKE_SPACES,
        SPACES,
        SWEEPS,
        format_space_value,
        pipeline_experiment,
    )

    knobs = set(AUGMENT_PARAMS)
    for variant in VARIANTS:
        # Production data is global: a crop would be a dead knob there.
        assert set(SPACES[variant].names) & knobs == knobs - {"augment_crop"}
        assert not set(SMOKE_SPACES[variant].names) & knobs  # make run's halving: unchanged
        assert set(AUGMENT_SPACES[variant].names) == (
            set(SMOKE_SPACES[variant].names) | knobs - {"augment_crop"})
        for param in (*SPACES[variant].parameters, *AUGMENT_SPACES[variant].parameters):
            if param.name in knobs:  # "off" is inside every range, so the defaults are a point
                off = format_space_value(AUGMENT_PARAMS[param.name])
                assert (off in {format_space_value(c) for c in param.choices} if param.choices
                        else param.low == AUGMENT_PARAMS[param.name]), param
        sweep = next(s for s in SWEEPS if s.relpath == f"smoke/{variant}-augment.yaml")
        assert sweep.augment and sweep.experiment_name == f"aurora-smoke-{variant}-augment"
        plain = pipeline_experiment(variant=variant, algorithm="sobol", profile="smoke",
                                    max_trials=2, parallel_trials=1)
        assert not {p.name for p in plain.parameters} & knobs
    for sweep in SWEEPS:
        if sweep.profile == "smoke" and not sweep.augment:
            assert not set(sweep.parameters) & knobs, sweep.relpath
