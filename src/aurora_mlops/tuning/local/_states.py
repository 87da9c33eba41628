"""How the local runner marks Optuna trials, and the one reading of a trial's Katib state.

The runner stores its facts about a trial as Optuna user attributes named ``katib_*``
(:data:`ATTR`): the trial's Katib name, assignments, observation, whether it was killed, or
interrupted by a dead runner and re-queued. :func:`trial_state` maps an Optuna trial onto the
states ``status.json`` and ``tune analyze`` count; :func:`live_trials` leaves out the
interrupted ones, as Katib's status does.

Cheap to import: optuna is imported inside the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

__all__ = [
    "ATTR",
    "COUNT_KEYS",
    "State",
    "attr",
    "live_trials",
    "requeue_interrupted",
    "trial_state",
]

#: Prefix of the user attributes the runner stores on Optuna trials.
ATTR = "katib"

State = Literal["complete", "pruned", "failed", "killed", "running", "waiting"]
COUNT_KEYS: tuple[State, ...] = ("complete", "pruned", "failed", "killed", "running", "waiting")


def attr(name: str) -> str:
    """The user-attribute key of one runner fact (``attr("name")`` is ``katib_name``)."""
    return f"{ATTR}_{name}"


def trial_state(t: optuna.trial.FrozenTrial) -> State:
    """A trial's state as Katib counts it: a failed trial the runner killed is ``killed``."""
    from optuna.trial import TrialState

    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned"
    if t.state == TrialState.FAIL:
        return "killed" if t.user_attrs.get(attr("killed")) else "failed"
    return "running" if t.state == TrialState.RUNNING else "waiting"


def live_trials(trials: Sequence[Any]) -> list[Any]:
    """``trials`` without those a dead runner left behind and re-queued (``katib_interrupted``)."""
    return [t for t in trials if not t.user_attrs.get(attr("interrupted"))]


def requeue_interrupted(study: optuna.Study) -> None:
    """Re-queue trials a dead runner left RUNNING (same parameters), never re-run others.

    The left trial is marked ``katib_interrupted`` and failed (so :func:`live_trials` drops it);
    a new trial with its parameters is enqueued, ``katib_requeued_from`` naming it.
    """
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, attr("interrupted"), True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs={
            attr("requeued_from"): t.user_attrs.get(attr("name"), str(t.number))},
            skip_if_exists=False)
        log.info("re-queued trial %s left running by a previous runner", t.number)
