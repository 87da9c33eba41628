"""An ensemble's forecasts for ``evaluate``: every member rolled out, stacked on ``member``.

``evaluate --ensemble K`` (or ``--model`` an ensemble package) scores the stack as the model,
so the evaluation's ensemble metrics apply as they are (the ensemble mean's RMSE, the fair
CRPS, spread and spread/skill), and the best member's own forecast as the reference
``best_member``, so the scorecard says where the ensemble beats the best single model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora_mlops.packaging._info import PackageError
from aurora_mlops.packaging._members import ENSEMBLE_FILE, Member, ensemble_record, select_members

__all__ = ["BEST_MEMBER", "EnsembleForecasts", "ensemble_forecasts", "ensemble_trials"]

#: Name of the best member's forecast among the evaluated forecasts (a reference).
BEST_MEMBER = "best_member"


@dataclass(frozen=True)
class EnsembleForecasts:
    """What ``evaluate`` scores for an ensemble.

    Attributes:
        forecasts: ``{"model": stack with a member dim, "best_member": member 0's}``.
        checkpoint: The record ``metrics.json`` keeps (``sha256``: the ensemble's digest,
            which ``package --ensemble K --eval`` checks; ``members``: each member's).
        best: The best member, loaded (for the untuned baseline).
    """

    forecasts: dict[str, Any]
    checkpoint: dict[str, Any]
    best: Any


def ensemble_trials(model: str | Path, k: int) -> list[Member]:
    """The members' trial folders, best first: an ensemble package's own (``k`` is then 1 or
    its size), or the ``k`` chosen from a sweep's work dir (see :func:`select_members`)."""
    model = Path(model)
    record_path = model / "artifacts" / ENSEMBLE_FILE
    if not record_path.is_file():
        return select_members(model, k)
    record = json.loads(record_path.read_text(encoding="utf-8"))
    size = len(record["members"])
    if k not in (1, size):
        raise PackageError(f"{model} is an ensemble of {size} members: pass --ensemble {size} "
                           "or leave it out")
    return [Member(name=str(m["trial"]), trial_dir=model / "artifacts" / str(m["path"]),
                   value=float(m["val_score"]), budget=m.get("budget"))
            for m in record["members"]]


def ensemble_forecasts(
    model: str | Path, k: int, data: Any, variant: str, *, scratch: Path, **rollout: Any
) -> EnsembleForecasts:
    """Roll out every member over ``data``'s test split into Zarr stores in ``scratch``
    (``rollout``: ``lead_steps``, ``max_inits``) and stack them lazily on ``member``."""
    import xarray as xr

    from aurora_mlops.evaluation import forecast_from_checkpoint
    from aurora_mlops.training import load_trained

    members = ensemble_trials(model, k)
    record = ensemble_record(members, "")
    runs, best = [], None
    for i, m in enumerate(members):
        trained = load_trained(m.trial_dir / "model.ckpt", variant)
        best = best or trained
        runs.append(forecast_from_checkpoint(trained, data, variant,
                                             store=scratch / f"member-{i}.zarr", **rollout))
    stack = xr.concat(runs, dim="member", coords="minimal", compat="override",
                      combine_attrs="drop_conflicts")
    stack = stack.assign_coords(member=[m.name for m in members])
    checkpoint = {
        "path": str(model), "sha256": record["sha256"], "trial": members[0].name,
        "members": [{"trial": e["trial"], "sha256": e["checkpoint_sha256"]}
                    for e in record["members"]],
    }
    return EnsembleForecasts(forecasts={"model": stack, BEST_MEMBER: runs[0]},
                             checkpoint=checkpoint, best=best)
