"""The best Katib trial as a pipeline artifact: its folder and a ``best.json`` (relative paths)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aurora_mlops._best import best_document
from aurora_mlops.tuning.katib._client import CHECKPOINT_NAME, KatibError

__all__ = ["export_trial"]


def export_trial(trial_dir: str | Path, dest: str | Path, *, experiment: str, best_trial: str,
                 parameters: Mapping[str, str], metrics: Mapping[str, float]) -> dict[str, Any]:
    """Copy the best trial's folder to ``dest`` and write ``dest/best.json`` (relative paths).

    ``best.json`` has the layout of a local sweep's (``bestTrialName``,
    ``parameterAssignments``, ``metrics``, ``checkpoint``), so ``train-trial --from-sweep DEST``
    and ``report`` read it, and the folder can move between tasks and machines.

    Raises:
        KatibError: The trial folder or its checkpoint is missing.
    """
    src, out = Path(trial_dir), Path(dest)
    if not (src / CHECKPOINT_NAME).is_file():
        raise KatibError(f"best trial {best_trial}: no {CHECKPOINT_NAME} in {src}; is the "
                         "artifacts volume mounted where the trials wrote it?")
    shutil.copytree(src, out, dirs_exist_ok=True)
    doc = best_document(experiment=experiment, best_trial=best_trial, parameters=parameters,
                        metrics=metrics, checkpoint=CHECKPOINT_NAME,
                        trial="trial.json" if (out / "trial.json").is_file() else None)
    (out / "best.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
