"""``katib check`` of ``spec.parameters``: types, feasible spaces, and the size of a grid.

The rules of Katib's admission webhook for each ParameterSpec (kubeflow/katib
``pkg/webhook/v1beta1/experiment/validator/validator.go``), with the grid search's count of
combinations against ``spec.maxTrialCount``.
"""

from __future__ import annotations

import math
from typing import Any, get_args

from aurora_mlops.tuning.katib._problems import _Ctx, _float, _map, _seq, describe
from aurora_mlops.tuning.space._search_space import ParameterType

__all__ = ["check_parameters"]

_PARAMETER_TYPES: tuple[str, ...] = get_args(ParameterType)
_DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")


def _budget(c: _Ctx, key: str) -> int | None:
    value = c.spec.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_parameter(c: _Ctx, i: int, param: dict[str, Any]) -> list[str] | None:
    """Problems of one ParameterSpec; returns its grid values (``None``: continuous/invalid)."""
    where = f"spec.parameters[{i}]"
    ptype = param.get("parameterType")
    if ptype not in _PARAMETER_TYPES:
        c.add(f"{where}.parameterType", f"must be one of {', '.join(_PARAMETER_TYPES)}, "
              f"got {describe(ptype)}")
        return None
    space = param.get("feasibleSpace")
    fs = _map(space)
    fsw = f"{where}.feasibleSpace"
    if not fs:
        c.add(fsw, "must be specified")
        return None
    dist = fs.get("distribution")
    if isinstance(dist, str) and dist and dist not in _DISTRIBUTIONS:
        c.add(f"{fsw}.distribution", f"{dist!r} is not supported; use one of "
              f"{', '.join(_DISTRIBUTIONS)}")
    if ptype in ("discrete", "categorical"):
        return _check_list_space(c, fsw, ptype, fs, dist)
    return _check_range_space(c, fsw, ptype, fs, dist)


def _check_list_space(c: _Ctx, fsw: str, ptype: str, fs: dict[str, Any],
                      dist: Any) -> list[str] | None:
    """A discrete or categorical ``feasibleSpace``; returns its values (``None``: invalid)."""
    for key in ("min", "max", "step"):
        if key in fs:
            c.add(f"{fsw}.{key}", f"is not supported for parameterType {ptype}; give a list")
    if isinstance(dist, str) and dist:
        c.add(f"{fsw}.distribution", f"is not supported for parameterType {ptype}")
    values = fs.get("list")
    if not isinstance(values, list):
        if "list" not in fs:
            c.add(f"{fsw}.list", f"must be specified for parameterType {ptype}")
        return None
    if not values:
        c.add(f"{fsw}.list", "must not be empty")
        return None
    texts = [v for v in values if isinstance(v, str)]
    dupes = sorted({v for v in texts if texts.count(v) > 1})
    if dupes:
        c.add(f"{fsw}.list", f"has duplicate values {dupes}")
    if ptype == "discrete":
        for j, v in enumerate(values):
            if isinstance(v, str) and _float(v) is None:
                c.add(f"{fsw}.list[{j}]", f"{v!r} is not a number (discrete values are "
                      "numbers; use categorical for labels)")
    return texts


def _check_range_space(c: _Ctx, fsw: str, ptype: str, fs: dict[str, Any],
                       dist: Any) -> list[str] | None:
    """A double or int ``feasibleSpace``; returns its grid (``None``: continuous or invalid)."""
    if "list" in fs:
        c.add(f"{fsw}.list", f"is not supported for parameterType {ptype}; give min and max")
    bounds: dict[str, float] = {}
    for key in ("min", "max"):
        if key not in fs:
            c.add(f"{fsw}.{key}", f"must be specified for parameterType {ptype}")
            continue
        text = fs[key]
        if not isinstance(text, str):
            continue  # reported by the type check
        value = _float(text)
        if value is None:
            c.add(f"{fsw}.{key}", f"{text!r} is not a number")
        elif ptype == "int" and not value.is_integer():
            c.add(f"{fsw}.{key}", f"{text!r} is not an integer (parameterType int)")
        else:
            bounds[key] = value
    step: float | None = None
    if isinstance(fs.get("step"), str) and fs["step"] != "":
        step = _float(fs["step"])
        if step is None or step <= 0:
            c.add(f"{fsw}.step", f"must be a positive number, got {fs['step']!r}")
            step = None
        elif ptype == "int" and not step.is_integer():
            c.add(f"{fsw}.step", f"{fs['step']!r} is not an integer (parameterType int)")
            step = None
    if len(bounds) < 2:
        return None
    lo, hi = bounds["min"], bounds["max"]
    if lo >= hi:
        c.add(f"{fsw}.min", f"{fs['min']} must be less than max ({fs['max']})")
        return None
    if dist in ("logUniform", "logNormal") and lo <= 0:
        c.add(f"{fsw}.min", f"{fs['min']} must be greater than 0 for distribution {dist}")
    if step is not None and step > hi - lo:
        c.add(f"{fsw}.step", f"{fs['step']} is larger than max - min ({hi - lo:g})")
        return None
    if ptype == "int":
        return [str(v) for v in range(int(lo), int(hi) + 1, int(step or 1))]
    if step is None:
        return None
    n = math.floor((hi - lo) / step + 1e-9) + 1
    return [f"{lo + k * step:g}" for k in range(n)]


def check_parameters(c: _Ctx) -> list[str]:
    params = _seq(c.spec.get("parameters"))
    if not params and "nasConfig" not in c.spec:
        c.add("spec.parameters", "must list at least one parameter (or give spec.nasConfig)")
        return []
    if params and "nasConfig" in c.spec:
        c.add("spec", "only one of spec.parameters and spec.nasConfig can be specified")
    names: list[str] = []
    grid: list[list[str] | None] = []
    grid_paths: list[str] = []
    for i, raw in enumerate(params):
        param = _map(raw)
        name = param.get("name")
        if not isinstance(name, str) or not name:
            c.add(f"spec.parameters[{i}].name", "must be specified")
        elif name in names:
            c.add(f"spec.parameters[{i}].name", f"parameter {name} is defined twice")
        else:
            names.append(name)
        if not param:
            continue
        grid.append(_check_parameter(c, i, param))
        grid_paths.append(f"spec.parameters[{i}]")
    algorithm = _map(c.spec.get("algorithm")).get("algorithmName")
    if algorithm == "grid" and params:
        size = 1
        for path, values in zip(grid_paths, grid, strict=True):
            if values is None:
                size = 0
                c.add(f"{path}.feasibleSpace.step", "grid search needs a discrete space: give "
                      "this double parameter a step (or use discrete/categorical)")
        if size:
            for values in grid:
                size *= len(values or [])
            max_trials = _budget(c, "maxTrialCount")
            if max_trials is not None and max_trials > size:
                c.add("spec.maxTrialCount", f"{max_trials} is larger than the grid "
                      f"({size} combinations); grid search cannot run more trials than that")
    return names
