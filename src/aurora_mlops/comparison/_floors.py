"""The floors a shipped model of ``make run`` must hold, read from its ``metrics.json``.

Three: the share of variable x level x lead RMSE targets on which the model beats persistence
and climatology (at least :data:`MIN_WON` each), the model's RMSE below persistence's at the
first lead on every headline variable (:func:`headline_targets`), and events in the truth of
every event table (else its F1 says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aurora_mlops.comparison._collect import headline_targets

__all__ = ["MIN_WON", "Floors", "floors"]

#: Fewest RMSE targets (a fraction) the model must win against each baseline.
MIN_WON = 0.6


@dataclass(frozen=True)
class Floors:
    """How one evaluation fares against the floors.

    Attributes:
        won: Baseline -> fraction of RMSE targets the model beats it on.
        headline: ``variable[@level]`` -> first-lead RMSE of the model / persistence.
        events: Event quantity -> whether the truth had events.
        failures: One phrase per floor missed (empty: every floor held).
    """

    won: dict[str, float]
    headline: dict[str, float]
    events: dict[str, bool]
    failures: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.failures

    def line(self) -> str:
        """One line for a summary."""
        won = ", ".join(f"{b} {f:.0%}" for b, f in self.won.items())
        head = ", ".join(f"{k} {v:.2f}x" for k, v in self.headline.items())
        ok = sum(self.events.values())
        verdict = "held" if self.held else "MISSED: " + "; ".join(self.failures)
        return (f"targets won vs {won}; first lead vs persistence {head}; events in "
                f"{ok}/{len(self.events)} tables: {verdict}")


def floors(doc: dict[str, Any]) -> Floors:
    """The floors of the evaluation ``doc`` (``evaluate``'s ``metrics.json``)."""
    card = doc.get("scorecard", {}).get("model", {})
    won = {b: float(card[b]["rmse"]["fraction"]) for b in ("persistence", "climatology")
           if "rmse" in card.get(b, {})}
    rmse = {(r["model"], r["variable"], r["level"], r["lead_hours"]): float(r["value"])
            for r in doc.get("rows", []) if r["metric"] == "rmse"}
    headline: dict[str, float] = {}
    for var, level in headline_targets(str(doc.get("variant", "")), doc.get("rows", []),
                                       "model"):
        leads = sorted(lead for m, v, lv, lead in rmse if (m, v, lv) == ("model", var, level))
        ref = rmse.get(("persistence", var, level, leads[0])) if leads else None
        if ref:
            name = var if level is None else f"{var}@{level}"
            headline[name] = rmse[("model", var, level, leads[0])] / ref
    events = {e["quantity"]: e["hits"] + e["misses"] > 0
              for e in doc.get("events", []) if e["model"] == "model"}
    failures = [f"{f:.0%} of targets won vs {b} < {MIN_WON:.0%}" for b, f in won.items()
                if f < MIN_WON]
    failures += [f"{b}: no RMSE targets" for b in ("persistence", "climatology")
                 if b not in won]
    failures += [f"{k} {v:.2f}x persistence at the first lead" for k, v in headline.items()
                 if v >= 1.0]
    failures += [f"no {q} event in the truth" for q, ok in events.items() if not ok]
    return Floors(won, headline, events, failures)
