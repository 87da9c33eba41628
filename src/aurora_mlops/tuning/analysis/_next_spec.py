"""The next Experiment ``tune analyze`` proposes: the input spec with the suggested spaces.

Server-set metadata is dropped, ``metadata.name`` bumped (``-v2``, ``-v3``), the analysis noted
in annotations, and a grid's budgets capped at the new grid's size.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from typing import Any

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.analysis._model import ParameterAnalysis, Suggestion
from aurora_mlops.tuning.katib._experiment import Experiment

_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences",
                  "finalizers")



def _bump_name(name: str) -> str:
    """``sweep`` -> ``sweep-v2``, ``sweep-v2`` -> ``sweep-v3`` (at most 63 characters)."""
    m = re.fullmatch(r"(.*)-v(\d+)", name)
    base, version = (m.group(1), int(m.group(2)) + 1) if m else (name, 2)
    suffix = f"-v{version}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix



def _next_spec(exp: Experiment, parameters: Sequence[ParameterAnalysis],
               suggestions: Sequence[Suggestion], notes: list[str]) -> dict[str, Any]:
    from aurora_mlops.tuning.katib._experiment_load import parse_experiment

    doc: dict[str, Any] = copy.deepcopy(dict(exp.raw))
    doc.pop("status", None)
    meta = doc.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    meta["name"] = _bump_name(exp.name)
    annotations = meta.setdefault("annotations", {})
    if "aurora-mlops/generated-by" in annotations:
        annotations["aurora-mlops/generated-by"] = "aurora-mlops tune analyze (review before use)"
    annotations["aurora-mlops/derived-from"] = exp.name
    changed = [s for s in suggestions if s.action != "keep"]
    annotations["aurora-mlops/analysis"] = "; ".join(
        f"{s.parameter}: {s.action}" for s in changed) or "no feasible-space changes"
    proposed = {p.name: p.proposed for p in parameters if p.proposed is not None}
    for item in doc.get("spec", {}).get("parameters", []):
        if isinstance(item, dict) and item.get("name") in proposed:
            item["feasibleSpace"] = {**item.get("feasibleSpace", {}), **proposed[item["name"]]}
    spec = doc.get("spec", {})
    budget = spec.get("maxTrialCount")
    if str(spec.get("algorithm", {}).get("algorithmName")) == "grid" and isinstance(budget, int):
        try:  # a fixed value or a narrower range can leave fewer grid points than the budget
            size = math.prod(len(p.grid_values()) for p in
                             parse_experiment(doc, source="next-spec.yaml").parameters)
        except ConfigError:
            return doc  # a grid the runner cannot enumerate; katib check reports it
        if budget > size:
            spec["maxTrialCount"] = size
            notes.append(f"next spec: maxTrialCount {budget} -> {size}, the size of the new grid.")
            for key in ("parallelTrialCount", "maxFailedTrialCount"):
                value = spec.get(key)
                if isinstance(value, int) and value > size:
                    spec[key] = size
    return doc
