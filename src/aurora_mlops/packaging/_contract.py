"""What a packaged model accepts: variables, history, grid, levels and lead times.

The contract is written into the package (``contract.json``) when it is built and read back by
the pyfunc, so a request is checked against the model it will run on before any model work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PRECISIONS", "ModelContract", "Precision", "max_steps_for"]

#: Numeric precisions a rollout runs in: ``bf16`` runs it under ``torch.autocast``.
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")

#: Longest forecast a packaged model serves, in hours (10 days, Aurora's medium range).
MAX_HORIZON_HOURS = 240


def max_steps_for(timestep_hours: int) -> int:
    """Most rollout steps a request may ask for: :data:`MAX_HORIZON_HOURS` of model steps."""
    return max(1, MAX_HORIZON_HOURS // timestep_hours)


class ModelContract(BaseModel):
    """The shape of a forecast request for one packaged model.

    Attributes:
        variant: Variant name.
        surf_vars: Surface variables a request must give, each ``(history, lat, lon)``.
        atmos_vars: Pressure-level variables, each ``(history, level, lat, lon)``.
        static_vars: Static fields the model reads; they ship inside the package.
        nan_allowed: Variables that may be NaN (wave fields over land); the rest must be finite.
        units: Units of every request variable.
        history: Input time steps per request, oldest first, one model step apart.
        levels: Pressure levels (hPa) of the atmospheric variables, in order.
        grid: ``(lat, lon)`` points of the model's grid (coordinates in ``static.npz``).
        timestep_hours: Hours per rollout step.
        default_steps: Rollout steps when a request does not say.
        max_steps: Most rollout steps a request may ask for.
        precision: The rollout's precision when a request does not say (``params.precision``);
            packages written before it existed read as ``fp32``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: str
    surf_vars: tuple[str, ...]
    atmos_vars: tuple[str, ...]
    static_vars: tuple[str, ...]
    nan_allowed: tuple[str, ...] = ()
    units: dict[str, str] = Field(default_factory=dict)
    history: int = Field(ge=1)
    levels: tuple[int, ...]
    grid: tuple[int, int]
    timestep_hours: int = Field(ge=1)
    default_steps: int = Field(ge=1)
    max_steps: int = Field(ge=1)
    precision: Precision = "fp32"

    def state_shape(self, name: str) -> tuple[int, ...]:
        """Expected shape of one initial state of ``name``, without a batch axis."""
        if name in self.atmos_vars:
            return (self.history, len(self.levels), *self.grid)
        return (self.history, *self.grid)

    @property
    def state_vars(self) -> tuple[str, ...]:
        """Every variable a request in the arrays form must give, surface first."""
        return (*self.surf_vars, *self.atmos_vars)
