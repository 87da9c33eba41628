"""What an explanation explains: one predicted variable (at one level) at one lead.

The target is parsed and checked against the model before any attribution runs, so a typo or
a lead the model does not reach is one sentence, not a traceback half-way through a roll-out.
"""

from __future__ import annotations

from dataclasses import dataclass

from aurora_mlops.errors import ConfigError

__all__ = ["ExplainTarget", "lead_horizon", "parse_target"]


@dataclass(frozen=True, kw_only=True)
class ExplainTarget:
    """A forecast quantity: ``variable`` (Aurora's name), its ``level`` (hPa, atmospheric
    variables only) and the ``lead`` in model steps (1 = one timestep after initialisation)."""

    variable: str
    level: int | None
    lead: int

    def __post_init__(self) -> None:
        if self.lead < 1:
            raise ConfigError(f"lead must be at least 1 model step, got {self.lead}")

    @property
    def label(self) -> str:
        """``2t`` or ``z@500``: how tables and file names show the target."""
        return self.variable if self.level is None else f"{self.variable}@{self.level}"


def lead_horizon(rollout_steps: int, evaluated_steps: int) -> int:
    """The furthest lead (model steps) a trial's model is explained at: what it was trained to
    roll out, or what ``evaluate`` scores by default, whichever is further."""
    return max(int(rollout_steps), int(evaluated_steps))


def parse_target(
    text: str | None,
    *,
    surf_vars: tuple[str, ...],
    atmos_vars: tuple[str, ...],
    levels: tuple[int, ...],
    lead: int,
    horizon: int,
    default: tuple[str, int | None],
) -> ExplainTarget:
    """``VAR`` or ``VAR@LEVEL`` checked against what the model predicts.

    Args:
        text: The ``--target`` value, or ``None`` for ``default``.
        surf_vars: Surface variables the model predicts.
        atmos_vars: Pressure-level variables the model predicts.
        levels: The model's pressure levels (hPa).
        lead: Lead in model steps.
        horizon: The furthest lead allowed (see :func:`lead_horizon`).
        default: ``(variable, level)`` used without ``text`` (the variant's headline).

    Raises:
        ConfigError: An unknown variable or level, a level on a surface variable, or a lead
            outside ``1..horizon``; the message lists what is allowed.
    """
    if not 1 <= lead <= horizon:
        raise ConfigError(
            f"--lead {lead} is beyond this model: it is explained at leads 1 to {horizon} "
            "(the steps it was trained to roll out or that evaluate scores); pass --lead 1 to "
            f"{horizon}"
        )
    if text is None:
        name, level = default
        if name in atmos_vars and level not in levels:
            level = levels[0]
        return ExplainTarget(variable=name, level=level, lead=lead)
    name, _, level_text = text.partition("@")
    known = ", ".join([*surf_vars, *atmos_vars])
    if name in surf_vars:
        if level_text:
            raise ConfigError(f"--target {text}: {name} is a surface variable, it has no level; "
                              f"pass --target {name}")
        return ExplainTarget(variable=name, level=None, lead=lead)
    if name not in atmos_vars:
        raise ConfigError(f"--target {text}: the model does not predict {name!r}; pick one of "
                          f"{known}")
    allowed = ", ".join(str(x) for x in levels)
    try:
        level = int(level_text) if level_text else levels[0]
    except ValueError:
        raise ConfigError(f"--target {text}: the level must be a whole number of hPa, one of "
                          f"{allowed}") from None
    if level not in levels:
        raise ConfigError(f"--target {text}: the model has no level {level} hPa; pick one of "
                          f"{allowed}")
    return ExplainTarget(variable=name, level=level, lead=lead)
