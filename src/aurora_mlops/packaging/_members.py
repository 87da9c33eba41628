"""Which trials of a sweep make a top-k ensemble, and the ensemble's identity (the record
``ensemble.json`` keeps: each member's checkpoint digest and the SHA-256 over them).

A plain sweep: the ``k`` Succeeded trials (``status.json``'s ``succeededTrialList``) with a
``model.ckpt``, lowest ``val_score`` first (the objective Katib minimised, as each trial's
``trial.json`` records it). A successive-halving chain (``halving.json``): the ``k`` best
*configurations*, each by the furthest Succeeded trial it reached with a checkpoint (its last
rung), the largest budget first and then the lowest value: a configuration stopped after 3
epochs is not compared on equal terms with one trained for 27, so budget decides first.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora_mlops.errors import CheckpointError
from aurora_mlops.packaging._info import PackageError

__all__ = [
    "ENSEMBLE_FILE", "MEMBERS_DIR", "Member", "ensemble_record", "ensemble_sha256",
    "select_members",
]

#: The ensemble's record inside a package's artifacts: members, digests, how they were chosen.
ENSEMBLE_FILE = "ensemble.json"
#: Folder of the members' trial files inside a package's artifacts.
MEMBERS_DIR = "members"
#: Trial parameter a halving rung's trial names its parent with (see tuning's ``PROMOTED``).
_PROMOTED = "promoted"


@dataclass(frozen=True)
class Member:
    """One trial of the ensemble.

    Attributes:
        name: The trial's name (its folder under ``WORKDIR/trials``).
        trial_dir: Its folder (``model.ckpt``, ``trial.json``).
        value: Its objective value (``val_score``, lower is better).
        budget: The halving budget of its rung (``None`` in a plain sweep).
    """

    name: str
    trial_dir: Path
    value: float
    budget: int | None = None


def ensemble_sha256(digests: Sequence[str]) -> str:
    """The ensemble's identity: SHA-256 of its members' checkpoint digests, in member order."""
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _digest(member: Member) -> str:
    trial = json.loads((member.trial_dir / "trial.json").read_text(encoding="utf-8"))
    digest = str(trial.get("checkpoint", {}).get("sha256") or "")
    if not digest:
        raise CheckpointError(f"{member.trial_dir / 'trial.json'} records no checkpoint sha256: "
                              "re-run the trial with this version of aurora-mlops")
    return digest


def ensemble_record(members: Sequence[Member], selection: str) -> dict[str, Any]:
    """``ensemble.json``'s content: the members (best first) with their digests."""
    digests = [_digest(m) for m in members]
    return {
        "k": len(members),
        "selection": selection,
        "sha256": ensemble_sha256(digests),
        "members": [
            {"index": i, "trial": m.name, "checkpoint_sha256": d, "val_score": m.value,
             "budget": m.budget, "path": f"{MEMBERS_DIR}/{i}"}
            for i, (m, d) in enumerate(zip(members, digests, strict=True))
        ],
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PackageError(f"{path} is not readable JSON ({e}): re-run the sweep") from e
    if not isinstance(doc, dict):
        raise PackageError(f"{path} is not a JSON object: re-run the sweep")
    return doc


def _usable(work: Path, name: str, value: Any) -> Member | None:
    """The trial as a member when it has a checkpoint and a finite value, else ``None``."""
    folder = work / "trials" / name
    if not (folder / "model.ckpt").is_file() or not (folder / "trial.json").is_file():
        return None
    if value is None:
        value = _read(folder / "trial.json").get("metrics", {}).get("val_score")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return Member(name=name, trial_dir=folder, value=number) if math.isfinite(number) else None


def _plain(work: Path) -> list[Member]:
    names = _read(work / "status.json").get("succeededTrialList") or []
    found = [m for n in names if (m := _usable(work, str(n), None)) is not None]
    return sorted(found, key=lambda m: (m.value, m.name))


def _halving(work: Path) -> list[Member]:
    doc = _read(work / "halving.json")
    trials: dict[str, tuple[dict[str, Any], int]] = {}
    for rung in doc.get("rungs") or []:
        for t in rung.get("trials") or []:
            trials[str(t.get("name"))] = (t, int(rung.get("budget", 0)))
    parent = {name: str(t.get("parameters", {}).get(_PROMOTED))
              for name, (t, _) in trials.items()
              if t.get("parameters", {}).get(_PROMOTED) in trials}
    continued = set(parent.values())
    chosen = []
    for leaf in (n for n in trials if n not in continued):
        name: str | None = leaf  # walk back from the configuration's last trial
        while name is not None:
            t, budget = trials[name]
            member = _usable(work, name, t.get("value")) if t.get("state") == "Succeeded" \
                else None
            if member is not None:
                chosen.append(Member(member.name, member.trial_dir, member.value, budget))
                break
            name = parent.get(name)
    return sorted(chosen, key=lambda m: (-(m.budget or 0), m.value, m.name))


def select_members(work: str | Path, k: int) -> list[Member]:
    """The ``k`` members of a local sweep's top-k ensemble, best first (module docstring).

    Raises:
        PackageError: ``work`` is not a sweep work dir, ``k`` is below 1, or fewer than ``k``
            trials (configurations) qualify.
    """
    work = Path(work)
    if k < 1:
        raise PackageError(f"--ensemble must be at least 1, got {k}")
    chain = (work / "halving.json").is_file()
    if not chain and not (work / "status.json").is_file():
        raise PackageError(
            f"{work} is not a local sweep's work dir (no status.json or halving.json): pass "
            "the --work-dir of `aurora-mlops tune` to --model"
        )
    members = _halving(work) if chain else _plain(work)
    if len(members) < k:
        what = "configurations" if chain else "Succeeded trials"
        raise PackageError(
            f"{work} has {len(members)} {what} with a checkpoint, fewer than --ensemble {k}: "
            f"pass --ensemble {max(len(members), 1)} or run a larger sweep"
        )
    return members[:k]
