"""The target and lead of an explanation are checked before any model work."""

from __future__ import annotations

import pytest

from aurora_mlops.errors import ConfigError
from aurora_mlops.explain import ExplainTarget, lead_horizon, parse_target

KW = {"surf_vars": ("2t", "msl"), "atmos_vars": ("z", "t"), "levels": (1000, 850, 500),
      "horizon": 4, "default": ("2t", None)}


@pytest.mark.parametrize(("text", "expected"), [
    (None, ("2t", None)), ("msl", ("msl", None)), ("z@500", ("z", 500)), ("t", ("t", 1000)),
], ids=["default", "surface", "atmos-level", "atmos-first-level"])
def test_targets(text: str | None, expected: tuple[str, int | None]) -> None:
    t = parse_target(text, lead=2, **KW)  # type: ignore[arg-type]
    assert (t.variable, t.level, t.lead) == (*expected, 2)


def test_default_atmospheric_headline_falls_back_to_a_level_the_model_has() -> None:
    t = parse_target(None, lead=1, **{**KW, "default": ("z", 700)})  # type: ignore[arg-type]
    assert (t.variable, t.level, t.label) == ("z", 1000, "z@1000")


@pytest.mark.parametrize(("text", "lead", "words"), [
    ("tp", 1, ["does not predict 'tp'", "2t, msl, z, t"]),
    ("2t@500", 1, ["surface variable", "--target 2t"]),
    ("z@700", 1, ["no level 700", "1000, 850, 500"]),
    ("z@high", 1, ["whole number"]),
    ("2t", 5, ["--lead 5 is beyond this model", "1 to 4"]),
    ("2t", 0, ["--lead 0"]),
], ids=["unknown-variable", "surface-level", "unknown-level", "bad-level", "lead-beyond",
        "lead-zero"])
def test_bad_targets_are_one_sentence(text: str, lead: int, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        parse_target(text, lead=lead, **KW)  # type: ignore[arg-type]
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_horizon_is_the_further_of_training_and_evaluation() -> None:
    assert lead_horizon(1, 4) == 4 and lead_horizon(6, 4) == 6
    with pytest.raises(ConfigError):
        ExplainTarget(variable="2t", level=None, lead=0)
