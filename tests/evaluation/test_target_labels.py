"""Targets are named unambiguously in pictures and tables: ``go3`` at 850 hPa is not ``go3850``."""

from __future__ import annotations

import pytest

from aurora_mlops.comparison._collect import target_name
from aurora_mlops.evaluation._plots import target_label


@pytest.mark.parametrize(("variable", "level", "name"), [
    ("2t", None, "2t"), ("z", 500, "z500"), ("go3", 850, "go3 850"), ("no2", 1000, "no2 1000"),
    ("q", 1000, "q1000"),
])
def test_a_level_is_told_apart_from_a_name_ending_in_a_digit(
    variable: str, level: int | None, name: str
) -> None:
    assert target_label(variable, level) == name
    assert target_label(variable, float(level) if level is not None else None) == name
    assert target_name(variable, level) == name
    # Every pair of (variable, level) of the air-pollution variant gets its own label.
    from aurora_mlops.variants import get_variant

    spec = get_variant("air-pollution")
    labels = [target_label(v.name, lv) for v in spec.variables() if v.kind == "atmos"
              for lv in spec.pressure_levels("production")]
    assert len(labels) == len(set(labels))
