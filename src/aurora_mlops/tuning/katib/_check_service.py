"""``katib check`` on what Katib's suggestion services do with a valid spec.

The webhook accepts these specs; the suggestion service behind the algorithm then fails, or
samples otherwise than the spec says and than the embedded runner does (which follows the spec
with Optuna). Which service serves which algorithm is Katib's default ``katib-config``
(kubeflow/katib ``manifests/v1beta1/installs/katib-standalone/katib-config.yaml``, v0.17-v0.19):
``random`` and ``tpe`` on hyperopt, ``grid`` and ``multivariate-tpe`` on Optuna, ``sobol`` and
``cmaes`` on goptuna, ``bayesianoptimization`` on skopt. :func:`service_problems` lists certain
failures (``katib check`` exits 1); :func:`service_warnings` lists the differences (a warning
line each, exit 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aurora_mlops.tuning.katib._problems import _Ctx, _float, _map, _seq
from aurora_mlops.tuning.katib._spec_yaml import load_spec

__all__ = ["KATIB_VERSIONS", "file_warnings", "service_problems", "service_warnings"]

#: Katib releases ``katib check --katib-version`` knows; the newest is the default.
KATIB_VERSIONS = ("0.17", "0.18", "0.19")
#: Katib's default ``spec.parallelTrialCount`` (``pkg/apis/controller/experiments/v1beta1/
#: experiment_defaults.go``).
DEFAULT_PARALLEL = 3
_HYPEROPT = ("random", "tpe")
_GOPTUNA = ("sobol", "cmaes")


def _parameters(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """``(path, parameter, feasibleSpace)`` of every parameter given as a mapping."""
    out = []
    for i, raw in enumerate(_seq(_map(doc.get("spec")).get("parameters"))):
        param = _map(raw)
        out.append((f"spec.parameters[{i}]", param, _map(param.get("feasibleSpace"))))
    return out


def _algorithm(doc: dict[str, Any]) -> str:
    name = _map(_map(doc.get("spec")).get("algorithm")).get("algorithmName")
    return name if isinstance(name, str) else ""


def service_problems(c: _Ctx) -> None:
    """Add what a suggestion service is certain to fail on (added to ``c``)."""
    if _algorithm(c.doc) == "multivariate-tpe":
        for where, param, fs in _parameters(c.doc):
            # pkg/suggestion/v1beta1/optuna/base_service.py builds int and double parameters
            # for uniform and logUniform only and leaves any other out of every suggestion.
            if param.get("parameterType") in ("int", "double") and fs.get("distribution") in (
                    "normal", "logNormal"):
                c.add(f"{where}.feasibleSpace.distribution", f"Katib's multivariate-tpe (Optuna) "
                      f"has no {fs['distribution']} distribution: it leaves {param.get('name')} "
                      "out of its suggestions and every trial fails; use uniform or logUniform")
    if _algorithm(c.doc) != "bayesianoptimization":
        return
    for where, param, fs in _parameters(c.doc):
        low = _float(fs["min"]) if isinstance(fs.get("min"), str) else None
        # skopt makes every double a log-uniform Real (``pkg/suggestion/v1beta1/skopt/
        # base_service.py``), and a log-uniform space has no zero or negative values.
        if param.get("parameterType") == "double" and low is not None and low <= 0:
            c.add(f"{where}.feasibleSpace.min", f"{fs['min']} must be greater than 0: Katib's "
                  "bayesianoptimization (skopt) samples every double log-uniformly and fails "
                  "on this bound; raise min or use another algorithm")


def _tpe_duplicates(doc: dict[str, Any], out: list[str]) -> None:
    parallel = _map(doc.get("spec")).get("parallelTrialCount", DEFAULT_PARALLEL)
    if isinstance(parallel, int) and parallel > 1:
        # pkg/suggestion/v1beta1/hyperopt/base_service.py: after the first batch, every slot
        # calls tpe.suggest with the same seed and the same history (kubeflow/katib#1329).
        out.append(f"spec.algorithm.algorithmName: Katib serves tpe with hyperopt, which "
                   f"proposes one and the same point for all {parallel} trials of a request "
                   "after the first batch, so parallel trials are duplicates; use "
                   "multivariate-tpe (Optuna's TPE with the constant liar, as the embedded "
                   "runner) or spec.parallelTrialCount: 1")


def _steps_from_zero(doc: dict[str, Any], out: list[str]) -> None:
    for where, param, fs in _parameters(doc):
        low = _float(fs["min"]) if isinstance(fs.get("min"), str) else None
        step = _float(fs["step"]) if isinstance(fs.get("step"), str) else None
        if param.get("parameterType") not in ("int", "double") or low is None or not step:
            continue
        if abs(low / step - round(low / step)) > 1e-9:
            # hyperopt's quniform is round(uniform(min, max) / step) * step.
            out.append(f"{where}.feasibleSpace.step: Katib's {_algorithm(doc)} (hyperopt) "
                       f"rounds to multiples of {fs['step']} counted from 0, not from min "
                       f"{fs['min']}, so it proposes other values than the embedded runner "
                       "(and may leave [min, max]); make min a multiple of step")


def _ignored_distributions(doc: dict[str, Any], out: list[str], why: str, fix: str) -> None:
    for where, _param, fs in _parameters(doc):
        dist = fs.get("distribution")
        if isinstance(dist, str) and dist not in ("", "uniform"):
            out.append(f"{where}.feasibleSpace.distribution: {why} ignores {dist} and samples "
                       f"uniformly between min and max, while the embedded runner follows it; "
                       f"{fix}")


def service_warnings(doc: Any, *, katib_version: str = KATIB_VERSIONS[-1]) -> list[str]:
    """Where Katib ``katib_version`` will sample otherwise than the spec and the embedded runner.

    One sentence each, field path first; empty when both agree.
    """
    if not isinstance(doc, dict):
        return []
    out: list[str] = []
    algorithm = _algorithm(doc)
    if algorithm == "tpe":
        _tpe_duplicates(doc, out)
    if algorithm in _HYPEROPT:
        _steps_from_zero(doc, out)
    if katib_version == "0.17":
        # FeasibleSpace gained `distribution` in v0.18.0 (pkg/apis/controller/experiments/
        # v1beta1/experiment_types.go); 0.17 drops the field it does not know.
        _ignored_distributions(doc, out, "Katib 0.17 has no feasibleSpace.distribution (added "
                               "in 0.18): it", "use Katib 0.18 or newer, or narrow the range")
    elif algorithm in _GOPTUNA:
        # pkg/suggestion/v1beta1/goptuna/converter.go builds distributions from min/max/step.
        _ignored_distributions(doc, out, f"Katib's {algorithm} (goptuna)",
                               "drop the distribution or use another algorithm")
    if algorithm == "bayesianoptimization":
        for where, param, fs in _parameters(doc):
            if param.get("parameterType") == "double" and fs.get("distribution") != "logUniform":
                out.append(f"{where}: Katib's bayesianoptimization (skopt) samples every double "
                           "log-uniformly, the embedded runner as the spec says; give it "
                           "distribution: logUniform")
    return out


def file_warnings(path: str | Path, *, katib_version: str = KATIB_VERSIONS[-1]) -> list[str]:
    """:func:`service_warnings` of the spec in ``path`` (none for a file that does not load:
    ``check_file`` reports that)."""
    try:
        doc = load_spec(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    return service_warnings(doc, katib_version=katib_version)
