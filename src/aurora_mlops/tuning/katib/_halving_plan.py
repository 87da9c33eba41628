"""A successive-halving plan: how many trials each rung keeps and the budget it trains to.

Written by ``katib render`` into a rung-0 spec's :data:`HALVING_ANNOTATION` and read back by
the chain (:mod:`._halving`) on either backend.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["HALVING_ANNOTATION", "Halving"]

#: The rung-0 annotation that holds the plan (JSON).
HALVING_ANNOTATION = "aurora-mlops/successive-halving"


class Halving(BaseModel):
    """A successive-halving plan: the resource, the reduction factor and each rung's budget.

    Attributes:
        resource: The trial flag the budget sets (``--epochs``).
        eta: Each rung keeps the best ``1/eta`` of its trials (at least one).
        budgets: The resource each rung trains to, strictly increasing; the last is the budget
            of the model shipped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource: Literal["epochs"] = "epochs"
    eta: int = Field(ge=2)
    budgets: tuple[int, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _increasing(self) -> Halving:
        if any(b <= 0 for b in self.budgets) or any(
                a >= b for a, b in zip(self.budgets, self.budgets[1:], strict=False)):
            raise ValueError(f"budgets must be positive and strictly increasing, got "
                             f"{list(self.budgets)}")
        return self

    def counts(self, first: int) -> list[int]:
        """Trials per rung when rung 0 has ``first``."""
        out = [first]
        for _ in self.budgets[1:]:
            out.append(max(1, out[-1] // self.eta))
        return out

    def cost(self, first: int) -> int:
        """The resource all rungs spend together (promoted trials resume, so each rung pays
        only for the budget it adds)."""
        spent, previous = 0, 0
        for n, budget in zip(self.counts(first), self.budgets, strict=True):
            spent += n * (budget - previous)
            previous = budget
        return spent

    def to_annotation(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)
