"""The metric lines a trial prints are exactly what Katib's collector regex reads back."""

from __future__ import annotations

import math
import re

import pytest

from aurora_mlops.katib_metrics import (
    KATIB_METRIC_PATTERN,
    format_metric_lines,
    parse_metric_lines,
)

# Katib v1beta1's default StdOut filter, spelled out independently of the module under test.
KATIB_DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def test_pattern_is_katibs_default() -> None:
    assert KATIB_METRIC_PATTERN == KATIB_DEFAULT_FILTER


@pytest.mark.parametrize(
    "value",
    [0.0123, 3, -2.5, 1e-5, 1.234567e-12, 6.02e23, 0.1 + 0.2, 123456.789],
    ids=["small", "int", "negative", "exp-small", "tiny", "huge", "float-noise", "large"],
)
def test_round_trip_through_katib_regex(value: float) -> None:
    (line,) = format_metric_lines({"val_score": value})
    (match,) = re.findall(KATIB_DEFAULT_FILTER, line)
    assert match[0] == "val_score"
    assert math.isclose(float(match[1]), value, rel_tol=1e-7)
    assert parse_metric_lines([line]) == [("val_score", pytest.approx(value, rel=1e-7))]


def test_many_metrics_one_per_line_and_noise_ignored() -> None:
    lines = format_metric_lines({"epoch": 3, "val_rmse": 0.5, "val_event_f1": 0.75})
    assert lines == ["epoch=3", "val_rmse=0.5", "val_event_f1=0.75"]
    parsed = parse_metric_lines(["loading data ...", *lines, "done"])
    assert parsed == [("epoch", 3.0), ("val_rmse", 0.5), ("val_event_f1", 0.75)]


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"]
)
def test_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        format_metric_lines({"val_score": bad})


def test_names_katib_cannot_collect_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot collect"):
        format_metric_lines({"val score": 1.0})
