"""Known answers of every metric on analytic fields (hand-computed values)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from aurora_mlops.evaluation import (
    acc,
    bias,
    circular_difference,
    confusion_counts,
    crps,
    ensemble_variance,
    event_scores,
    lat_weights,
    mae,
    mse,
    pearson,
)

# Two latitudes: cos(60) = 0.5 and cos(0) = 1, so normalised weights are 2/3 and 4/3.
LAT = np.array([60.0, 0.0])
LON = np.array([0.0, 90.0, 180.0, 270.0])


def field(values_by_lat: list[float], name: str = "x") -> xr.Dataset:
    data = np.repeat(np.asarray(values_by_lat, dtype=np.float64)[:, None], LON.size, axis=1)
    return xr.Dataset({name: (("lat", "lon"), data)}, coords={"lat": LAT, "lon": LON})


W = lat_weights(xr.DataArray(LAT, dims="lat", coords={"lat": LAT}))


def test_lat_weights_are_cosine_with_mean_one() -> None:
    np.testing.assert_allclose(W.values, [2 / 3, 4 / 3])


def test_mse_mae_bias_known_answers() -> None:
    f, t = field([2.0, 0.0]), field([0.0, 0.0])  # error 2 at 60N, 0 at the equator
    assert float(mse(f, t, weights=W)["x"]) == pytest.approx((0.5 * 4) / 1.5)
    assert float(mae(f, t, weights=W)["x"]) == pytest.approx((0.5 * 2) / 1.5)
    assert float(bias(f, t, weights=W)["x"]) == pytest.approx((0.5 * 2) / 1.5)
    assert float(bias(t, f, weights=W)["x"]) == pytest.approx(-(0.5 * 2) / 1.5)


def test_nan_points_are_skipped_with_renormalised_weights() -> None:
    f, t = field([2.0, 0.0]), field([0.0, np.nan])
    # Only 60N remains: its renormalised weight is 1, so MSE is exactly 4.
    assert float(mse(f, t, weights=W)["x"]) == pytest.approx(4.0)
    assert float(mae(f, t, weights=W)["x"]) == pytest.approx(2.0)


def test_acc_and_pearson_known_answers() -> None:
    clim = field([10.0, 10.0])
    t = field([11.0, 9.0])
    assert float(acc(field([12.0, 8.0]), t, weights=W, climatology=clim)["x"]) == pytest.approx(1)
    assert float(acc(field([9.0, 11.0]), t, weights=W, climatology=clim)["x"]) == pytest.approx(-1)
    # Anomalies f' = (1, 1), t' = (1, -1): sum w f't' = 2/3 - 4/3, norms sqrt(2) each -> -1/3.
    got = float(acc(field([11.0, 11.0]), t, weights=W, climatology=clim)["x"])
    assert got == pytest.approx((2 / 3 - 4 / 3) / 2)
    # Pearson is invariant under positive affine maps and flips sign under negative ones.
    assert float(pearson(field([25.0, 21.0]), t, weights=W)["x"]) == pytest.approx(1.0)
    assert float(pearson(field([-5.0, 5.0]), t, weights=W)["x"]) == pytest.approx(-1.0)


def test_circular_error_350_vs_10_is_20_degrees() -> None:
    f, t = field([350.0, 350.0], "mwd"), field([10.0, 10.0], "mwd")
    assert float(mae(f, t, weights=W, angles={"mwd"})["mwd"]) == pytest.approx(20.0)
    assert float(bias(f, t, weights=W, angles={"mwd"})["mwd"]) == pytest.approx(-20.0)
    assert float(mse(f, t, weights=W, angles={"mwd"})["mwd"]) == pytest.approx(400.0)
    assert float(circular_difference(xr.DataArray(10.0), xr.DataArray(350.0))) == 20.0


def _ensemble(members: list[float], name: str = "x") -> xr.Dataset:
    data = np.asarray(members, dtype=np.float64)[:, None, None] * np.ones((1, LAT.size, LON.size))
    return xr.Dataset(
        {name: (("member", "lat", "lon"), data)}, coords={"lat": LAT, "lon": LON}
    )


@pytest.mark.parametrize(
    ("members", "truth", "expected"),
    [
        ([0.0, 2.0], 1.0, 0.0),  # E|X-y| = 1, E|X-X'| = 2 -> 1 - 1 = 0
        ([0.0, 1.0, 2.0], 0.0, 1.0 / 3.0),  # 1 - 0.5 * 8/6
        ([1.0, 1.0], 3.0, 2.0),  # no spread: CRPS = absolute error
    ],
    ids=["two-members", "three-members", "no-spread"],
)
def test_crps_known_ensembles(members: list[float], truth: float, expected: float) -> None:
    got = float(crps(_ensemble(members), field([truth, truth]), weights=W)["x"])
    assert got == pytest.approx(expected)


def test_crps_circular_members() -> None:
    # Members 350 and 10 around truth 0: E|X-y| = 10, E|X-X'| = 20 -> 10 - 10 = 0.
    got = crps(_ensemble([350.0, 10.0], "mwd"), field([0.0, 0.0], "mwd"), weights=W,
               angles={"mwd"})
    assert float(got["mwd"]) == pytest.approx(0.0)


def test_ensemble_variance_unbiased() -> None:
    got = ensemble_variance(_ensemble([0.0, 2.0]), weights=W)
    assert float(got["x"]) == pytest.approx(2.0)  # ((1)^2 + (1)^2) / (2 - 1)


def test_event_confusion_counts_on_hand_made_field() -> None:
    f = xr.DataArray([[20.0, 10.0], [16.0, np.nan], [1.0, 30.0]], dims=("lat", "lon"))
    t = xr.DataArray([[18.0, 17.0], [3.0, 40.0], [2.0, 14.0]], dims=("lat", "lon"))
    c = confusion_counts(f, t, threshold=15.0, dims=("lat", "lon"))
    # Pairs: (20,18) hit, (10,17) miss, (16,3) false alarm, NaN skipped, (1,2) CN, (30,14) FA.
    assert {k: int(c[k]) for k in c.data_vars} == {
        "hits": 1, "misses": 1, "false_alarms": 2, "correct_negatives": 1,
    }
    s = event_scores(c)
    assert float(s["accuracy"]) == pytest.approx(2 / 5)
    assert float(s["precision"]) == pytest.approx(1 / 3)
    assert float(s["recall"]) == pytest.approx(1 / 2)
    assert float(s["f1"]) == pytest.approx(2 / (2 + 1 + 2))
    assert float(s["csi"]) == pytest.approx(1 / 4)
