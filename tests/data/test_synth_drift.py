"""``data synth --drift``: the warming trend is exactly the stated ramp, and nothing else moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aurora_mlops.cli import main
from aurora_mlops.data import SynthDrift, open_dataset, synthesize
from aurora_mlops.errors import ConfigError


def test_the_warming_is_the_ramp_from_its_start_and_leaves_the_rest_alone() -> None:
    base = synthesize("medium-res", seed=3, times=24)
    warm = synthesize("medium-res", seed=3, times=24,
                      drift=SynthDrift(kind="warming", start="2024-01-03T00:00", rate=2.0))
    # 6-hourly from 2024-01-01: index 8 is the start, +0.5 K per step after it.
    expected = np.maximum(np.arange(24) - 8, 0) * 0.5
    for name in ("2t", "t"):
        diff = (warm[name] - base[name]).mean([d for d in warm[name].dims if d != "time"])
        np.testing.assert_allclose(diff.values, expected, atol=1e-3)
    for name in ("10u", "msl", "z", "q", "u"):
        np.testing.assert_array_equal(warm[name].values, base[name].values)
    assert warm.attrs["drift"] == "warming from 2024-01-03T00:00 at 2 per day"


def test_bad_drifts_are_refused_in_one_sentence() -> None:
    with pytest.raises(ConfigError, match="drift start 'soon'"):
        SynthDrift(start="soon")
    with pytest.raises(ConfigError, match="drift kind 'cooling' is unknown"):
        SynthDrift(kind="cooling", start="2024-01-01")  # type: ignore[arg-type]


def test_the_cli_writes_a_drifted_dataset(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "warm.nc"
    assert main(["data", "synth", "--variant", "medium-res", "--out", str(out), "--times", "8",
                 "--drift", "warming", "--drift-start", "2024-01-01T12:00"]) == 0
    assert "warming" in open_dataset(out).attrs["drift"]
    assert main(["data", "synth", "--variant", "medium-res", "--out", str(out),
                 "--drift", "warming"]) == 1
    assert "--drift needs --drift-start" in capsys.readouterr().err
