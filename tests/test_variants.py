"""The variant registry builds the real aurora models; checkpoints load through both paths."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import torch

from aurora_mlops.errors import CheckpointError, ConfigError
from aurora_mlops.variants import VARIANTS, build_model, get_variant, load_weights, model_knobs

NAMES = list(VARIANTS)


def _batch(name: str, batch_size: int = 1):  # type: ignore[no-untyped-def]
    from aurora import Batch, Metadata

    spec = VARIANTS[name]
    h, w = spec.smoke_grid
    g = torch.Generator().manual_seed(0)
    t = max(2, spec.min_history)
    lv = spec.smoke_levels

    def r(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g) + 0.5

    surf = {v: r(batch_size, t, h, w) for v in spec.surf_vars}
    for v in ("mwd", "mdww", "mdts", "mwd1", "mwd2"):
        if v in surf:
            surf[v] = surf[v] * 200
    return Batch(
        surf_vars=surf,
        static_vars={v: r(h, w) for v in spec.static_vars},
        atmos_vars={v: r(batch_size, t, len(lv), h, w) for v in spec.atmos_vars},
        metadata=Metadata(
            lat=torch.linspace(90, -90, h),
            lon=torch.linspace(0, 360, w + 1)[:-1],
            time=tuple(datetime(2024, 1, 1, 6 * i) for i in range(batch_size)),
            atmos_levels=lv,
        ),
    )


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_smoke_config_forward_backward_on_cpu(name: str) -> None:
    spec = get_variant(name)
    torch.manual_seed(0)
    model = build_model(spec, profile="smoke")
    assert type(model).__name__.startswith(spec.aurora_class)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    batch = _batch(name, batch_size=2)
    pred = model(batch)
    loss = sum(torch.nan_to_num(v).mean() for v in pred.surf_vars.values())
    loss.backward()  # type: ignore[union-attr]
    assert set(pred.surf_vars) == set(spec.surf_vars)
    for v in spec.surf_vars:
        assert pred.surf_vars[v].shape == (2, 1, *spec.smoke_grid), v
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    # Its speed ("well under a second") is a figure of bench/bench_train.py, not an assertion.


def test_air_pollution_batches_of_two_equal_two_batches_of_one() -> None:
    """The registry's fix of AuroraAirPollution's (b,1,h,w)+(b,h,w) broadcast."""
    torch.manual_seed(0)
    model = build_model("air-pollution").eval()
    both = _batch("air-pollution", batch_size=2)
    with torch.no_grad():
        joint = model(both).surf_vars["pm2p5"]
        import dataclasses

        singles = []
        for i in range(2):
            b = dataclasses.replace(
                both,
                surf_vars={k: v[i : i + 1] for k, v in both.surf_vars.items()},
                atmos_vars={k: v[i : i + 1] for k, v in both.atmos_vars.items()},
                metadata=dataclasses.replace(both.metadata, time=both.metadata.time[i : i + 1]),
            )
            singles.append(model(b).surf_vars["pm2p5"])
    assert joint.shape == (2, 1, *VARIANTS["air-pollution"].smoke_grid)
    single = torch.cat(singles)
    # Batched matmuls round differently in the last bits: measured 8.6e-6 on a field of scale
    # 10 (8e-7 of it), so allow 1e-5 of the field's scale. The broadcast bug mixes the two
    # members, whose fields differ by ~6 (60 % of the scale): far outside that bound.
    scale = float(joint.abs().max())
    assert float((joint - single).abs().max()) <= 1e-5 * scale
    assert float((single[0] - single[1]).abs().max()) > 1e3 * 1e-5 * scale


def test_unknown_override_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as e:
        build_model("medium-res", {"lora_rank": 4, "embed_dim": 64})
    msg = str(e.value)
    assert "lora_rank" in msg and "embed_dim" not in msg.split("valid")[0]
    assert "valid settings are:" in msg and "lora_steps" in msg and "mlp_ratio" in msg


def test_unknown_variant_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="choose one of medium-res, high-res"):
        get_variant("low-res")


def test_knobs_come_from_the_real_constructors() -> None:
    wave = model_knobs(VARIANTS["ocean-waves"])
    assert "angle_surf_vars" in wave and "embed_dim" in wave
    assert "angle_surf_vars" not in model_knobs(VARIANTS["medium-res"])


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_local_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    spec = get_variant(name)
    torch.manual_seed(1)
    source = build_model(spec)
    path = tmp_path / "w.ckpt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(2)
    target = build_model(spec)
    load_weights(target, spec, path)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)


def test_hub_path_uses_aurora_load_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hub` goes through aurora's own load_checkpoint; only the download is replaced."""
    import aurora.model.aurora as aurora_module

    spec = get_variant("medium-res")
    torch.manual_seed(1)
    source = build_model(spec)
    path = tmp_path / spec.checkpoint_name
    torch.save(source.state_dict(), path)
    asked: list[tuple[str, str]] = []

    def fake_download(repo_id: str, filename: str, revision: str | None = None) -> str:
        asked.append((repo_id, filename))
        return str(path)

    monkeypatch.setattr(aurora_module, "hf_hub_download", fake_download)
    target = build_model(spec)
    load_weights(target, spec, "hub")
    assert asked == [("microsoft/aurora", "aurora-0.25-finetuned.ckpt")]
    torch.testing.assert_close(
        target.state_dict()["decoder.surf_heads.2t.weight"],
        source.state_dict()["decoder.surf_heads.2t.weight"],
    )


def test_checkpoint_errors_are_clear(tmp_path: Path) -> None:
    spec = get_variant("medium-res")
    model = build_model(spec)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(model, spec, tmp_path / "nope.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="does not fit variant medium-res"):
        load_weights(model, spec, garbage)
    bigger = build_model(spec, {"embed_dim": 64})
    torch.save(bigger.state_dict(), tmp_path / "big.ckpt")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(model, spec, tmp_path / "big.ckpt")


_LOOP = {"learning_rate": 1e-3, "epochs": 1, "steps_per_epoch": 1, "batch_size": 1}


def test_capability_fields_name_real_events_and_variables() -> None:
    """Every per-variant fact the loss, the trainer, the evaluation and the report read."""
    from aurora_mlops.evaluation import EVENTS

    quantities = {e.quantity for e in EVENTS}
    for spec in VARIANTS.values():
        assert set(spec.events) <= quantities, spec.name
        assert set(spec.event_inputs) <= set(spec.surf_vars), spec.name
        names = {v.name for v in spec.variables()}
        assert {var for var, _ in spec.headline} <= names, spec.name
        for _, level in spec.headline:
            assert level is None or level in spec.levels, spec.name


def test_a_fifth_variant_is_one_new_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new registry entry with its own capabilities: the trainer, the training event, the
    evaluation's events and the report's headline follow it with no other change."""
    from aurora_mlops.comparison import headline_targets
    from aurora_mlops.evaluation import events_for
    from aurora_mlops.training import TrialParams, build_trial_model
    from aurora_mlops.training._loss import event_field

    fifth = VARIANTS["medium-res"].model_copy(update={
        "name": "medium-res-spectral",
        "loss_terms": ("spectral",),
        "events": ("ws10",),
        "event_inputs": ("2t",),
        "headline": (("t", 850),),
    })
    monkeypatch.setitem(VARIANTS, fifth.name, fifth)
    params = TrialParams(**_LOOP, spectral_loss_weight=0.05)
    assert build_trial_model(fifth, params, "smoke") is not None
    with pytest.raises(ConfigError, match="applies to ocean-waves and medium-res-spectral only"):
        build_trial_model(VARIANTS["medium-res"], params, "smoke")
    with pytest.raises(ConfigError, match="--log_space_loss applies to air-pollution only"):
        build_trial_model(fifth, TrialParams(**_LOOP, log_space_loss=True), "smoke")
    surf = {"2t": torch.full((2, 2), 3.0), "10u": torch.full((2, 2), 3.0),
            "10v": torch.full((2, 2), 4.0)}
    assert float(event_field(fifth.name, surf).max()) == 3.0
    assert float(event_field("medium-res", surf).max()) == 5.0
    assert [e.quantity for e in events_for(fifth.name)] == ["ws10"]
    assert [e.quantity for e in events_for("ocean-waves")] == ["tp_24h", "ws10", "swh"]
    rows = [{"model": "m", "metric": "rmse", "variable": v, "level": lv, "lead_hours": 6.0,
             "value": 1.0} for v, lv in (("2t", None), ("t", 700), ("t", 850))]
    assert headline_targets(fifth.name, rows, "m") == [("t", 850)]
    assert headline_targets("medium-res", rows, "m") == [("2t", None)]


def test_coastal_conditioning_is_an_extra_input_of_ocean_waves_only() -> None:
    from aurora_mlops.training import TrialParams, build_trial_model

    params = TrialParams(**_LOOP, coastal_conditioning=True)
    model = build_trial_model(VARIANTS["ocean-waves"], params, "smoke")
    assert "coast_mask" in VARIANTS["ocean-waves"].extra_inputs
    assert "coast_mask" in model.static_vars  # type: ignore[operator]
    with pytest.raises(ConfigError, match="--coastal_conditioning applies to ocean-waves only"):
        build_trial_model(VARIANTS["medium-res"], params, "smoke")
