"""``best.json``, the one file a sweep hands on: which trial won, its parameters, metrics and
checkpoint, in Katib's words (``bestTrialName``, ``parameterAssignments``).

Three writers fill it through :func:`best_document`: the local runner
(:class:`~aurora_mlops.tuning.SweepResult`), the export of a Katib trial
(:func:`~aurora_mlops.tuning.export_trial`) and the pipeline's tune step. :func:`read_best` is
its one reader, for ``train-trial --from-sweep``, a sweep given where a trial is expected
(``evaluate --model``, ``package``), the analysis, the pipeline's final fit and the combined
report.

It sits with the shared helpers rather than in ``tuning`` because ``training``, a layer below,
reads it too; ``aurora_mlops.tuning`` exports its names for everyone above.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora_mlops.errors import ConfigError

__all__ = ["BEST_FILE", "BestTrial", "best_document", "read_best"]

BEST_FILE = "best.json"
_MADE_BY = "aurora-mlops tune SPEC --backend local --work-dir DIR"


@dataclass(frozen=True)
class BestTrial:
    """What a sweep's ``best.json`` says.

    Attributes:
        path: The file read.
        trial: ``bestTrialName``; ``None`` when no trial succeeded (``reason`` says why) or
            the file does not say.
        experiment: The Experiment's name.
        parameters: ``parameterAssignments`` as ``{name: Katib string}``, in the file's order.
        metrics: The best trial's metrics (``val_score`` ...).
        checkpoint: The best trial's ``model.ckpt``; a relative path in the file is taken from
            the file's folder (an exported trial's folder moves between machines).
        reason: Why the sweep stopped, as the local runner words it.
        spec: The Experiment YAML the sweep ran, if recorded.
    """

    path: Path
    trial: str | None
    experiment: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    reason: str | None = None
    spec: str | None = None


def best_document(*, experiment: str, best_trial: str | None,
                  parameters: Mapping[str, str],
                  metrics: Mapping[str, float], checkpoint: str | None,
                  **extra: Any) -> dict[str, Any]:
    """The content of ``best.json``: the fields every writer gives, then its ``extra`` ones
    (``reason``, ``spec``, ``trial`` ...) in the order given."""
    return {"experiment": experiment, "bestTrialName": best_trial,
            "parameterAssignments": [{"name": k, "value": v} for k, v in parameters.items()],
            "metrics": dict(metrics), "checkpoint": checkpoint, **extra}


def read_best(where: str | Path) -> BestTrial:
    """Read ``best.json`` from a sweep's folder (or the file itself).

    Raises:
        ConfigError: The file is missing, is not a JSON object, or a field has the wrong type;
            the message names the file and the field.
    """
    where = Path(where)
    path = where if where.suffix == ".json" else where / BEST_FILE
    if not path.is_file():
        raise ConfigError(f"{path.parent} holds no {BEST_FILE}: pass a directory written by "
                          f"`{_MADE_BY}` (the work dir of a finished sweep)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not readable JSON ({e}): re-run `{_MADE_BY}`") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a JSON object: re-run `{_MADE_BY}`")
    checkpoint = _text(doc, "checkpoint", path)
    return BestTrial(
        path=path, trial=_text(doc, "bestTrialName", path),
        experiment=_text(doc, "experiment", path),
        parameters=_assignments(doc.get("parameterAssignments"), path),
        metrics=_metrics(doc.get("metrics"), path),
        checkpoint=path.parent / checkpoint if checkpoint else None,
        reason=_text(doc, "reason", path), spec=_text(doc, "spec", path))


def _wrong(path: Path, name: str, want: str, got: Any) -> ConfigError:
    return ConfigError(f"{path}: field {name!r} must be {want}, not {got!r}; re-run "
                       f"`{_MADE_BY}`")


def _text(doc: Mapping[str, Any], name: str, path: Path) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise _wrong(path, name, "a string or null", value)
    return value


def _assignments(raw: Any, path: Path) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise _wrong(path, "parameterAssignments", "a list", raw)
    out: dict[str, str] = {}
    for i, item in enumerate(raw):
        value = item.get("value") if isinstance(item, dict) else None
        if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                and isinstance(value, str | int | float) and not isinstance(value, bool)):
            raise _wrong(path, f"parameterAssignments[{i}]",
                         "an object with a string name and a string or number value", item)
        out[item["name"]] = value if isinstance(value, str) else str(value)
    return out


def _metrics(raw: Any, path: Path) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()):
        raise _wrong(path, "metrics", "an object of numbers", raw)
    return {str(k): v for k, v in raw.items()}
