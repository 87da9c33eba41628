"""Captum's attributions on a forecaster whose answer is known: its target depends on one
input field only, so that field must come first and every other field must score zero."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _tiny import OneInputModel

from aurora_mlops.data import WindowDataset
from aurora_mlops.explain import ExplainTarget, attribute_window, input_fields
from aurora_mlops.variants import get_variant

pytest.importorskip("captum")

GRID = (16, 32)


@pytest.fixture
def window(canonical_factory: Callable[..., Any]) -> Any:
    """One medium-res window (history 2) on a 16 x 32 grid, with two lead steps of truth."""
    ds = canonical_factory("medium-res", times=8, grid=GRID, seed=3)
    windows = WindowDataset(ds, get_variant("medium-res"), (0, 8), history=2, rollout_steps=2)
    return windows.batch([0])[0]


def test_fields_are_every_variable_level_and_static(window: Any) -> None:
    names, tensors = input_fields(window)
    spec = get_variant("medium-res")
    assert len(names) == len(spec.surf_vars) + 3 * len(spec.atmos_vars) + len(spec.static_vars)
    assert {"2t", "z@500", "t@850", "lsm (static)"} <= set(names)
    assert tensors[names.index("t@850")].shape == (1, 2, *GRID)
    assert tensors[names.index("lsm (static)")].shape == (1, *GRID)
    # The level split keeps each level's own values (z@1000 and z@500 differ in the data).
    levels = [int(x) for x in window.metadata.atmos_levels]
    np.testing.assert_array_equal(tensors[names.index("z@500")].numpy(),
                                  window.atmos_vars["z"][:, :, levels.index(500)].numpy())


@pytest.mark.parametrize(("target", "source", "lead"), [
    ("2t", "10u", 1), ("2t", "msl", 2), ("msl", "10v", 1),
], ids=["2t-from-10u", "2t-from-msl-lead2", "msl-from-10v"])
def test_the_one_input_comes_first_and_the_rest_score_zero(
    window: Any, target: str, source: str, lead: int,
) -> None:
    model = OneInputModel(target, source).eval()
    out = attribute_window(model, window, ExplainTarget(variable=target, level=None, lead=lead),
                           tiles=(2, 4))
    for scores in (out.occlusion, out.saliency):
        assert scores is not None
        assert out.names[int(np.argmax(scores))] == source
        others = np.delete(scores, out.names.index(source))
        assert np.all(others == 0.0), dict(zip(out.names, scores, strict=True))
        assert scores[out.names.index(source)] > 0


def test_negative_control_a_model_that_ignores_every_input_scores_zero(window: Any) -> None:
    model = OneInputModel("2t", "10u", gain=0.0).eval()
    out = attribute_window(model, window, ExplainTarget(variable="2t", level=None, lead=1))
    assert out.occlusion is not None and out.saliency is not None
    assert np.all(out.occlusion == 0.0) and np.all(out.saliency == 0.0)
    assert out.region_map is not None and np.all(out.region_map == 0.0)


def test_occlusion_knows_the_value_it_takes_out(window: Any) -> None:
    """Target 2 * 10u: occluding 10u by its mean changes 2t by 2 * (10u - mean), whose
    latitude-weighted RMS is known exactly."""
    out = attribute_window(OneInputModel("2t", "10u").eval(), window,
                           ExplainTarget(variable="2t", level=None, lead=1), method="occlusion")
    u = window.surf_vars["10u"][0, -1].double().numpy()
    full = window.surf_vars["10u"].double().numpy()
    w = np.clip(np.cos(np.deg2rad(window.metadata.lat.double().numpy())), 0, None)
    w = w / w.sum()
    expected = np.sqrt(((2 * (u - full.mean())) ** 2 * w[:, None]).sum(axis=0).mean())
    assert out.occlusion is not None
    assert out.occlusion[out.names.index("10u")] == pytest.approx(expected, rel=1e-4)
    assert out.saliency is None and out.saliency_maps is None


def test_regions_find_where_the_dependence_is(window: Any) -> None:
    """Target 2t = 2 * 10u on the northern half only: occluding southern tiles changes
    nothing; saliency maps are zero in the south too."""
    model = OneInputModel("2t", "10u", rows=slice(0, GRID[0] // 2)).eval()
    out = attribute_window(model, window, ExplainTarget(variable="2t", level=None, lead=1),
                           tiles=(4, 8))
    assert out.region_map is not None and out.bands is not None and out.saliency_maps is not None
    north, south = out.region_map[: GRID[0] // 2], out.region_map[GRID[0] // 2 :]
    assert np.all(north > 0) and np.all(south == 0)
    assert out.bands[0] > 0 and out.bands[1] > 0 and out.bands[2] == 0 and out.bands[3] == 0
    u_map = out.saliency_maps[out.names.index("10u")]
    # Row 0 is the pole, whose area weight (cos 90 deg) is zero.
    assert np.all(u_map[GRID[0] // 2 :] == 0) and np.all(u_map[1 : GRID[0] // 2] > 0)


def test_fields_with_missing_points_still_score(window: Any) -> None:
    """Wave fields are NaN where there are no waves: the source's spread and the target's
    mean skip those points instead of turning the whole score into NaN or zero."""
    import dataclasses

    surf = dict(window.surf_vars)
    source = surf["10u"].clone()
    source[..., : GRID[0] // 4, :] = float("nan")
    surf["10u"] = source
    holed = dataclasses.replace(window, surf_vars=surf)
    out = attribute_window(OneInputModel("2t", "10u").eval(), holed,
                           ExplainTarget(variable="2t", level=None, lead=1), tiles=(2, 2))
    assert out.occlusion is not None and out.saliency is not None
    for scores in (out.occlusion, out.saliency):
        assert np.all(np.isfinite(scores))
        assert out.names[int(np.argmax(scores))] == "10u" and scores.max() > 0
    # Three quarters of the points left: the score keeps its size (a NaN spread made it 0).
    whole = attribute_window(OneInputModel("2t", "10u").eval(), window,
                             ExplainTarget(variable="2t", level=None, lead=1), tiles=(2, 2))
    assert whole.saliency is not None
    k = out.names.index("10u")
    assert 0.3 < out.saliency[k] / whole.saliency[k] < 3
