"""``katib check``: validate an Experiment spec the way Katib's admission webhook does.

The entry points of :meth:`KatibExperiment.problems <._model.KatibExperiment.problems>`, which
holds every rule: :func:`check_experiment` for a parsed document, :func:`check_file` for a file
(unreadable files and bad YAML included). Each problem is one sentence that starts with its
field path, for example ``spec.parameters[2].feasibleSpace.min: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aurora_mlops.tuning.katib._model import KatibExperiment
from aurora_mlops.tuning.katib._spec_yaml import load_spec

__all__ = ["check_experiment", "check_file"]


def check_experiment(doc: Any) -> list[str]:
    """Every problem of the parsed YAML ``doc``, one sentence each, field path first.

    Problems such as ``spec.parameters[2].feasibleSpace.min: 'x' is not a number`` (the
    model's field problems first, then the webhook's rules); an empty list: the spec is valid.
    """
    return KatibExperiment.problems(doc)


def check_file(path: str | Path) -> list[str]:
    """Problems of the Experiment spec in ``path`` (unreadable files and bad YAML included)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [f"cannot read the file: {e}"]
    try:
        doc = load_spec(text)
    except yaml.YAMLError as e:
        detail = " ".join(str(e).split())
        return [f"not valid YAML: {detail}"]
    return check_experiment(doc)
