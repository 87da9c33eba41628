"""The promotion gate: a small typed rule compared between a challenger and the champion.

Grammar (whitespace is free, ``and`` is case-insensitive)::

    rule    := clause ("and" clause)*
    clause  := METRIC OP operand
    OP      := "<=" | ">=" | "<" | ">" | "=="
    operand := "champion" [("+" | "-") NUMBER] | NUMBER

``METRIC`` is ``val_score`` (lower is better) or a headline score of the package such as
``rmse_wins_vs_persistence`` (targets beaten; higher is better). ``champion`` stands for the
same metric of the version holding the ``champion`` alias, so
``val_score<=champion and rmse_wins_vs_persistence>=champion`` reads "no worse validation score
and no fewer targets beaten against persistence". A model's first version becomes champion
without a comparison.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict

from aurora_mlops._io import atomic_write
from aurora_mlops.errors import PublishError

__all__ = ["Clause", "GateDecision", "GateRule", "evaluate_gate", "parse_gate", "write_gate"]

Op = Literal["<=", ">=", "<", ">", "=="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq,
}
_UNSIGNED = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = rf"[+-]?{_UNSIGNED}"
_CLAUSE = re.compile(
    rf"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op><=|>=|==|<|>)\s*"
    rf"(?:(?P<champ>champion)\s*(?:(?P<sign>[+-])\s*(?P<offset>{_UNSIGNED}))?"
    rf"|(?P<number>{_NUMBER}))\s*$",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


class Clause(BaseModel):
    """One comparison ``metric op (champion + offset | number)``."""

    model_config = ConfigDict(frozen=True)

    metric: str
    op: Op
    against_champion: bool
    value: float  # the offset added to the champion's value, or the absolute number

    def __str__(self) -> str:
        if not self.against_champion:
            return f"{self.metric}{self.op}{self.value:g}"
        offset = f"{self.value:+g}" if self.value else ""
        return f"{self.metric}{self.op}champion{offset}"


class GateRule(BaseModel):
    """A parsed gate rule: every clause must hold."""

    model_config = ConfigDict(frozen=True)

    text: str
    clauses: tuple[Clause, ...]


def parse_gate(text: str) -> GateRule:
    """Parse a gate rule (see the module docstring for the grammar).

    Raises:
        PublishError: naming the clause that does not parse and the expected form.
    """
    parts = _AND.split(text.strip()) if text.strip() else []
    if not parts:
        raise PublishError("the gate rule is empty: give e.g. --gate 'val_score<=champion'")
    clauses = []
    for i, part in enumerate(parts, 1):
        m = _CLAUSE.match(part)
        if not m:
            raise PublishError(
                f"gate rule clause {i} ({part.strip()!r}) must look like METRIC OP champion, "
                "METRIC OP champion+NUMBER or METRIC OP NUMBER with OP one of <=, >=, <, >, == "
                "(e.g. 'val_score<=champion and rmse_wins_vs_persistence>=champion')"
            )
        if m["champ"]:
            offset = float(m["offset"]) if m["offset"] else 0.0
            value = -offset if m["sign"] == "-" else offset
        else:
            value = float(m["number"])
        clauses.append(
            Clause(
                metric=m["metric"], op=cast(Op, m["op"]), against_champion=bool(m["champ"]),
                value=value,
            )
        )
    return GateRule(text=" and ".join(str(c) for c in clauses), clauses=tuple(clauses))


class ClauseResult(BaseModel):
    """How one clause fared: the numbers and the verdict."""

    clause: str
    challenger: float | None
    reference: float | None
    passed: bool
    note: str = ""


class GateDecision(BaseModel):
    """Everything ``gate.json`` records about one promotion decision."""

    model: str
    rule: str
    challenger_version: str
    champion_version: str | None
    challenger_metrics: dict[str, float | None]
    champion_metrics: dict[str, float | None]
    clauses: list[ClauseResult]
    passed: bool
    forced: bool
    outcome: Literal["first", "promoted", "refused", "forced"]

    def summary(self) -> str:
        """One line: which version against which, and the outcome."""
        against = f"champion v{self.champion_version}" if self.champion_version else "no champion"
        numbers = "; ".join(
            f"{c.clause}: {c.challenger} vs {c.reference} {'ok' if c.passed else 'FAIL'}"
            for c in self.clauses
        )
        return (
            f"gate {'PASS' if self.passed else 'FAIL'} for {self.model} v{self.challenger_version}"
            f" against {against}: {self.outcome}" + (f" ({numbers})" if numbers else "")
        )


def _check(
    clause: Clause, mine: float | None, theirs: float | None
) -> ClauseResult:
    if mine is None:
        return ClauseResult(
            clause=str(clause), challenger=None, reference=None, passed=False,
            note=f"the challenger has no {clause.metric}",
        )
    if clause.against_champion and theirs is None:
        return ClauseResult(
            clause=str(clause), challenger=mine, reference=None, passed=False,
            note=f"the champion has no {clause.metric}; use --force to promote anyway",
        )
    ref = (theirs or 0.0) + clause.value if clause.against_champion else clause.value
    return ClauseResult(
        clause=str(clause), challenger=mine, reference=ref, passed=_OPS[clause.op](mine, ref)
    )


def evaluate_gate(
    rule: GateRule,
    *,
    model: str,
    challenger_version: str,
    challenger: Mapping[str, float | None],
    champion_version: str | None,
    champion: Mapping[str, float | None],
    force: bool = False,
) -> GateDecision:
    """Decide whether the challenger takes ``champion``.

    Args:
        rule: The parsed gate rule.
        model: Registered model name (for the record).
        challenger_version: Version number of the new version.
        challenger: Its metrics (``val_score`` and headline scores; ``None`` when unknown).
        champion_version: Version holding ``champion``, or ``None`` for a model's first version.
        champion: The champion's metrics.
        force: Promote even if the rule fails (recorded as ``forced``).
    """
    metrics = sorted({c.metric for c in rule.clauses})
    results = (
        [] if champion_version is None
        else [_check(c, challenger.get(c.metric), champion.get(c.metric)) for c in rule.clauses]
    )
    passed = all(r.passed for r in results)
    if champion_version is None:
        outcome: Literal["first", "promoted", "refused", "forced"] = "first"
    elif passed:
        outcome = "promoted"
    else:
        outcome = "forced" if force else "refused"
    return GateDecision(
        model=model, rule=rule.text, challenger_version=challenger_version,
        champion_version=champion_version,
        challenger_metrics={m: challenger.get(m) for m in metrics},
        champion_metrics={m: champion.get(m) for m in metrics} if champion_version else {},
        clauses=results, passed=passed, forced=force and not passed, outcome=outcome,
    )


def write_gate(decision: GateDecision, path: Path) -> Path:
    """Write ``decision`` as JSON to ``path`` (atomically) and return the path."""
    atomic_write(path, decision.model_dump_json(indent=2) + "\n")
    return path
