"""Explanations: which inputs and regions a trained model's forecast of one quantity depends
on, by Captum's occlusion (feature ablation) and gradient saliency (``aurora-mlops explain``).

Captum is the optional extra ``explain``; without it :func:`explain_model` says so in one
sentence. Importing this package imports neither torch nor Captum.
"""

from __future__ import annotations

from aurora_mlops.explain._attribute import (
    METHODS,
    Method,
    TargetForecast,
    WindowAttribution,
    attribute_window,
    input_fields,
    require_captum,
)
from aurora_mlops.explain._beside import EXPLANATION_DIR, explanation_beside
from aurora_mlops.explain._run import explain_model
from aurora_mlops.explain._target import ExplainTarget, lead_horizon, parse_target

__all__ = [
    "EXPLANATION_DIR",
    "METHODS",
    "ExplainTarget",
    "Method",
    "TargetForecast",
    "WindowAttribution",
    "attribute_window",
    "explain_model",
    "explanation_beside",
    "input_fields",
    "lead_horizon",
    "parse_target",
    "require_captum",
]
