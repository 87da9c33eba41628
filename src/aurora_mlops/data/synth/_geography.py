"""The grid, continents, mountains and static fields of one synthetic dataset."""

from __future__ import annotations

import numpy as np

from aurora_mlops.data.synth._physics import Array, G

__all__ = ["Geography"]


class Geography:
    """A regular global grid with seeded continents, mountains, soil types and bathymetry.

    Grid arrays are ``(H, W)`` (or broadcastable ``(H, 1)``/``(1, W)``); all arithmetic is
    float64 and vectorised.
    """

    def __init__(self, lat: Array, lon: Array, rng: np.random.Generator) -> None:
        self.h, self.w = lat.size, lon.size
        self.lat_deg = lat[:, None]
        self.lon_deg = lon[None, :]
        self.phi = np.deg2rad(self.lat_deg)
        self.lam = np.deg2rad(self.lon_deg)
        self.sin_phi, self.cos_phi = np.sin(self.phi), np.cos(self.phi)
        self.subtropics = np.exp(-(((np.abs(self.lat_deg) - 25.0) / 8.0) ** 2))
        self._make(rng)

    def great_circle_deg(self, lat_c: Array, lon_c: Array) -> Array:
        """Angular distances (degrees) from centres ``(N,)`` to every point, shape (N, H, W)."""
        lat_c = np.deg2rad(lat_c)[:, None, None]
        lon_c = np.deg2rad(lon_c)[:, None, None]
        cosd = np.sin(self.phi) * np.sin(lat_c) + np.cos(self.phi) * np.cos(lat_c) * np.cos(
            self.lam - lon_c
        )
        return np.rad2deg(np.arccos(np.clip(cosd, -1.0, 1.0)))

    def _make(self, rng: np.random.Generator) -> None:
        n = int(rng.integers(6, 9))
        lat_c = rng.uniform(-50.0, 65.0, n)
        lon_c = rng.uniform(0.0, 360.0, n)
        radius = rng.uniform(16.0, 34.0, n)
        d = self.great_circle_deg(lat_c, lon_c)
        blobs = np.exp(-((d / radius[:, None, None]) ** 2))
        ripple = 0.12 * np.cos(3 * self.lam + rng.uniform(0, 2 * np.pi)) * np.cos(
            2 * self.phi + rng.uniform(0, 2 * np.pi)
        )
        antarctica = 1.5 / (1.0 + np.exp((self.lat_deg + 70.0) / 2.5))
        s = blobs.sum(axis=0) + ripple + antarctica
        self.lsm = np.clip((s - 0.5) / 0.15 + 0.5, 0.0, 1.0)
        land = self.lsm >= 0.5
        self.land = land
        # Mountains: ridges inside continents, an ice plateau over Antarctica.
        m = int(rng.integers(3, 6))
        dm = self.great_circle_deg(rng.uniform(-45.0, 60.0, m), rng.uniform(0.0, 360.0, m))
        ridges = (rng.uniform(0.5, 1.0, m)[:, None, None] * np.exp(-((dm / 12.0) ** 2))).sum(0)
        height = self.lsm * (120.0 + 2600.0 * np.clip(ridges, 0.0, 1.0) + 2200.0 * antarctica / 1.5)
        self.orography = height  # (m)
        self.z_static = G * height
        texture = 0.5 + 0.5 * np.sin(2 * self.lam + rng.uniform(0, 2 * np.pi)) * np.cos(
            3 * self.phi + rng.uniform(0, 2 * np.pi)
        )
        self.slt = np.where(land, np.clip(1 + np.floor(7 * texture), 1, 7), 0.0)
        self.lat_mask = np.broadcast_to(
            np.clip((80.0 - np.abs(self.lat_deg)) / 4.0, 0.0, 1.0), (self.h, self.w)
        ).copy()
        ocean = ~land
        self.wave_sea = ocean & (self.lat_mask > 0.0)
        coast = np.clip((0.5 - s) / 0.5, 0.0, 1.0)
        self.wmb = np.where(ocean, 30.0 + 5200.0 * np.sqrt(coast), 0.0)

    def static_fields(self) -> dict[str, Array]:
        """The weather and wave static fields, by dataset name, shape (H, W)."""
        fields = {"lsm": self.lsm, "z_static": self.z_static, "slt": self.slt,
                  "wmb": self.wmb, "lat_mask": self.lat_mask}
        return {k: np.broadcast_to(v, (self.h, self.w)) for k, v in fields.items()}
