"""The floors make run's summary holds each shipped model to, read from ``metrics.json``."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_mlops.comparison import MIN_WON, floors


def _row(model: str, variable: str, level: int | None, lead: float, value: float
         ) -> dict[str, Any]:
    return {"model": model, "metric": "rmse", "variable": variable, "level": level,
            "lead_hours": lead, "value": value}


def _doc(*, won: float = 0.8, events: int = 5, first_2t: float = 1.0) -> dict[str, Any]:
    rows = [
        # 2t: the model beats persistence at 6 h only; the later lead must not count.
        _row("model", "2t", None, 6.0, first_2t), _row("persistence", "2t", None, 6.0, 2.0),
        _row("model", "2t", None, 12.0, 5.0), _row("persistence", "2t", None, 12.0, 3.0),
        _row("model", "msl", None, 6.0, 50.0), _row("persistence", "msl", None, 6.0, 100.0),
        # z at 500 hPa is the headline level; 850 hPa must not be read for it.
        _row("model", "z", 500, 6.0, 30.0), _row("persistence", "z", 500, 6.0, 60.0),
        _row("model", "z", 850, 6.0, 90.0), _row("persistence", "z", 850, 6.0, 10.0),
        {"model": "model", "metric": "acc", "variable": "2t", "level": None, "lead_hours": 6.0,
         "value": 0.9},
    ]
    return {"variant": "medium-res", "rows": rows,
            "scorecard": {"model": {"persistence": {"rmse": {"fraction": won}},
                                    "climatology": {"rmse": {"fraction": 0.9}}}},
            "events": [{"model": "model", "quantity": "ws10", "hits": events, "misses": 0},
                       {"model": "persistence", "quantity": "ws10", "hits": 0, "misses": 0}]}


def test_a_model_that_holds_every_floor() -> None:
    f = floors(_doc())
    assert f.held and f.failures == []
    assert f.won == {"persistence": 0.8, "climatology": 0.9}
    assert f.headline == {"2t": 0.5, "msl": 0.5, "z@500": 0.5}
    assert f.events == {"ws10": True}
    assert f.line().endswith(": held")


@pytest.mark.parametrize("doc, missed", [
    (_doc(won=MIN_WON - 0.01), "59% of targets won vs persistence < 60%"),
    (_doc(events=0), "no ws10 event in the truth"),
    (_doc(first_2t=2.0), "2t 1.00x persistence at the first lead"),
])
def test_each_missed_floor_is_named(doc: dict[str, Any], missed: str) -> None:
    f = floors(doc)
    assert not f.held and f.failures == [missed]
    assert "MISSED: " + missed in f.line()
