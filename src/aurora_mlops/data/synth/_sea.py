"""Ocean waves: a wind sea relaxing toward the local wind's sea and two swells from storm belts.

Directions are "coming from", clockwise from north, matching ``10u_wave``/``10v_wave``. As in
ERA5, every wave-model field (the wave variables and the wave model's own wind ``wind``,
``10u_wave``, ``10v_wave``) is NaN over land (``lsm >= 0.5``); over polar sea ice the heights,
periods and directions are zero ("no waves", which Aurora blanks itself), and on open water
heights and periods are strictly positive together. With
storm-track winds above 15 m/s at a few percent of the points, the significant wave height
exceeds the 4 m event threshold at a few percent of the sea points.
"""

from __future__ import annotations

import numpy as np

from aurora_mlops.data.synth._atmosphere import Gauss, Weather
from aurora_mlops.data.synth._geography import Geography
from aurora_mlops.data.synth._physics import Array, from_direction, mean_direction

__all__ = ["Sea"]

#: e-folding times (h) of the wind sea and the two swells toward their targets.
_LIFETIMES_H = {"ww": 9.0, "s1": 36.0, "s2": 30.0}


class Sea:
    """The sea state (wind-sea and swell heights, m) of one dataset."""

    def __init__(self, geo: Geography) -> None:
        self.geo = geo
        self.state: dict[str, Array] | None = None

    def _targets(self, wind: Array, t_h: float) -> dict[str, Array]:
        geo = self.geo
        h_eq = 0.05 + 0.018 * wind**2  # fully developed wind-sea height (m)
        belt_s = np.exp(-(((geo.lat_deg + 50.0) / 12.0) ** 2))
        belt_n = np.exp(-(((geo.lat_deg - 48.0) / 12.0) ** 2))

        def belt_mean(belt: Array) -> float:
            weight = belt * geo.cos_phi * geo.wave_sea
            return float((h_eq * weight).sum() / max(float(weight.sum()), 1e-12))

        sw1 = (0.4 + 1.6 * np.exp(-(((geo.lat_deg + 50.0) / 25.0) ** 2))) * (
            0.5 + 0.5 * belt_mean(belt_s) / 2.0) * (
            1.0 + 0.3 * np.cos(2 * geo.lam - 0.02 * t_h))
        sw2 = (0.2 + 1.0 * np.exp(-(((geo.lat_deg - 45.0) / 22.0) ** 2))) * (
            0.5 + 0.5 * belt_mean(belt_n) / 2.0) * (
            1.0 + 0.3 * np.cos(3 * geo.lam - 0.03 * t_h + 1.0))
        return {"ww": h_eq, "s1": sw1, "s2": sw2}

    def step(
        self, out: dict[str, Array], weather: Weather, t_h: float, dt_h: float, noise: Gauss,
        wanted: set[str],
    ) -> None:
        """Advance the sea state by ``dt_h`` and write the wave fields into ``out``."""
        geo = self.geo
        u10, v10 = weather.u10, weather.v10
        wind = np.hypot(u10, v10)
        targets = self._targets(wind, t_h)
        if self.state is None:
            self.state = {k: np.broadcast_to(v, (geo.h, geo.w)).copy() for k, v in targets.items()}
        for k, target in targets.items():
            r = np.exp(-dt_h / _LIFETIMES_H[k])
            self.state[k] = target + (self.state[k] - target) * r
        if not wanted:
            return
        hw = (geo.h, geo.w)
        hww = self.state["ww"] * np.exp(0.02 * noise(hw))
        sw1 = self.state["s1"] * np.exp(0.02 * noise(hw))
        sw2 = self.state["s2"] * np.exp(0.02 * noise(hw))
        # Wind sea: coming from where the wind comes from; period of a sea of this height.
        dir_ww = from_direction(u10, v10)
        tp_ww = 1.5 + 0.73 * np.sqrt(hww / 0.018)
        dir1 = 215.0 + 25.0 * np.sin(geo.lam + 0.5) + 10.0 * geo.sin_phi
        dir2 = 295.0 + 20.0 * np.cos(2 * geo.lam)
        tp1 = 10.5 + 1.5 * sw1
        tp2 = 8.5 + 1.2 * sw2
        e1, e2, eww = sw1**2, sw2**2, hww**2
        mdts = mean_direction((e1, dir1), (e2, dir2))
        mpts = (e1 * tp1 + e2 * tp2) / (e1 + e2)
        mpww = 0.85 * tp_ww
        fields = {
            "swh": np.sqrt(eww + e1 + e2),
            "mwd": mean_direction((eww, dir_ww), (e1 + e2, mdts)),
            "mwp": (eww * mpww + (e1 + e2) * 0.9 * mpts) / (eww + e1 + e2),
            "pp1d": np.where(eww >= e1 + e2, tp_ww, np.where(e1 >= e2, tp1, tp2)),
            "shww": hww, "mdww": dir_ww, "mpww": mpww,
            "shts": np.sqrt(e1 + e2), "mdts": mdts, "mpts": mpts,
            "swh1": sw1, "mwd1": np.mod(dir1, 360.0), "mwp1": 0.9 * tp1,
            "swh2": sw2, "mwd2": np.mod(dir2, 360.0), "mwp2": 0.9 * tp2,
        }
        for name, value in fields.items():
            out[name] = np.where(geo.land, np.nan, np.where(geo.wave_sea, value, 0.0))
        for name, value in (("wind", wind), ("10u_wave", u10), ("10v_wave", v10)):
            out[name] = np.where(geo.land, np.nan, value)
