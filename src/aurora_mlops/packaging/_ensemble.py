"""A top-k ensemble inside a package: its members' files, their check at load, their mean,
and the model card's ensemble section.

The package's own ``model.ckpt`` and ``trial.json`` are the best member's (so everything that
reads one model from a package, the monitor and the card, sees the best single model); every
member, the best included, is under ``artifacts/members/<i>/`` and ``ensemble.json`` records
each member's checkpoint SHA-256, which :func:`load_members` checks before building anything.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aurora_mlops.errors import CheckpointError
from aurora_mlops.packaging._ensemble_eval import BEST_MEMBER
from aurora_mlops.packaging._members import ENSEMBLE_FILE, MEMBERS_DIR, Member, ensemble_record

__all__ = ["ensemble_card", "ensemble_mean_arrays", "load_members", "stage_members"]

_TRIAL_FILES = ("model.ckpt", "trial.json", "config.json", "norm_stats.json")


def stage_members(members: Sequence[Member], selection: str, stage: Path) -> dict[str, Path]:
    """Copy every member's trial files under ``stage/members/<i>`` and write ``ensemble.json``;
    returns the two by name (``{"ensemble.json": ..., "members": ...}``)."""
    record = ensemble_record(members, selection)
    for i, m in enumerate(members):
        dst = stage / MEMBERS_DIR / str(i)
        dst.mkdir(parents=True)
        for name in _TRIAL_FILES:
            if (m.trial_dir / name).is_file():
                shutil.copy2(m.trial_dir / name, dst / name)
    (stage / ENSEMBLE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {ENSEMBLE_FILE: stage / ENSEMBLE_FILE, MEMBERS_DIR: stage / MEMBERS_DIR}


def load_members(artifacts: Path, variant: str) -> list[Any]:
    """The members of the ensemble in ``artifacts`` as loaded ``TrainedModel``s, best first.

    Raises:
        CheckpointError: A member's checkpoint is missing or its SHA-256 is not the one
            ``ensemble.json`` records (one sentence naming the member).
    """
    from aurora_mlops._io import sha256_file
    from aurora_mlops.training import load_trained

    path = artifacts / ENSEMBLE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        entries = list(record["members"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not an ensemble record ({e}): re-run "
                              "`aurora-mlops package --ensemble K`") from e
    out = []
    for entry in entries:
        ckpt = artifacts / str(entry["path"]) / "model.ckpt"
        label = f"ensemble member {entry['index']} (trial {entry['trial']})"
        if not ckpt.is_file():
            raise CheckpointError(f"{label}: {ckpt} is missing; the package is incomplete: "
                                  "re-run `aurora-mlops package --ensemble K`")
        found = sha256_file(ckpt)
        if found != entry["checkpoint_sha256"]:
            raise CheckpointError(
                f"{label}: {ckpt} has sha256 {found}, but {path.name} records "
                f"{entry['checkpoint_sha256']}; the file changed: re-run "
                "`aurora-mlops package --ensemble K`"
            )
        out.append(load_trained(ckpt, variant))
    return out


def ensemble_mean_arrays(members: dict[str, np.ndarray], axis: int = 1) -> dict[str, np.ndarray]:
    """The ensemble mean of ``{name: array}`` along the members' ``axis``: the circular mean for
    directions (wave directions), the plain mean for the rest, as ``evaluate`` scores them."""
    import xarray as xr

    from aurora_mlops.evaluation import ensemble_mean
    from aurora_mlops.variables import VARIABLES

    angles = {v.name for v in VARIABLES.values() if v.angle}
    out = {}
    for name, arr in members.items():
        dims = [f"d{i}" for i in range(arr.ndim)]
        dims[axis] = "member"
        mean = ensemble_mean(xr.Dataset({name: (dims, arr)}), angles=angles)
        out[name] = np.asarray(mean[name].values, dtype=np.float32)
    return out


def ensemble_card(info: Any, metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's ensemble section: the members, and which won against the best member
    (``evaluate --ensemble K``'s ``best_member`` rows) and by how much; ``None`` for one model.

    ``comparison`` (``None`` without those rows): ``wins`` and ``targets`` (variable x level x
    lead where the ensemble mean's RMSE is lower), ``median_ratio`` (RMSE of the mean over the
    best member's), ``change_pct`` (the same as a percentage change), ``winner``.
    """
    if not info.ensemble:
        return None
    rmse: dict[str, dict[tuple[Any, ...], float]] = {"model": {}, BEST_MEMBER: {}}
    for r in (metrics or {}).get("rows", []):
        if r["metric"] == "rmse" and r["model"] in rmse:
            rmse[r["model"]][(r["variable"], r["level"], r["lead_hours"])] = float(r["value"])
    ratios = sorted(v / rmse[BEST_MEMBER][k] for k, v in rmse["model"].items()
                    if rmse[BEST_MEMBER].get(k))
    comparison = None
    if ratios:
        median = float(np.median(ratios))
        comparison = {
            "wins": sum(x < 1 for x in ratios), "targets": len(ratios), "median_ratio": median,
            "change_pct": abs(median - 1.0) * 100.0,
            "winner": "the ensemble mean" if median < 1 else "the best single member",
        }
    halving = any(m.get("budget") is not None for m in info.ensemble)
    return {"members": info.ensemble, "k": len(info.ensemble), "halving": halving,
            "comparison": comparison}
