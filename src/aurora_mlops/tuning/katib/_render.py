"""Render the search spaces into Katib v1beta1 Experiment specs (``katib/``).

Each spec is built as data (nested dicts in a fixed key order) and dumped with a
:class:`yaml.SafeDumper` whose resolver also treats ``1e-4`` as a number (as Kubernetes'
YAML reader does), so such strings come out quoted and stay strings on the cluster.

Layout of the output directory::

    <out>/<variant>/{grid,random,tpe}.yaml          production sweeps (GPU node pool)
    <out>/high-res/{grid,random,tpe}-pytorchjob.yaml  the same, one GPU a pod (PyTorchJob)
    <out>/smoke/<variant>-{grid,random,tpe,sobol}.yaml  CPU sweeps (sobol: ``make run``'s)

What each sweep is for:

- ``grid``: a few architecture combinations, trained from scratch (proxy-scale sweep).
- ``random``: the whole space (architecture and fine-tune knobs), trained from scratch.
- ``tpe``: the fine-tune knobs only, starting from the published checkpoint (``--init hub``),
  with median-stop early stopping; Katib runs it as ``multivariate-tpe``
  (:data:`~aurora_mlops.tuning.katib._sweeps.KATIB_ALGORITHMS` says why).

Smoke specs run ``train-trial --profile smoke`` on two CPUs with tiny budgets, on the same
volumes and paths as production trials (:mod:`aurora_mlops.tuning.katib._trial_spec`); the embedded
runner stands in for the volumes with folders of its work dir.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from aurora_mlops._io import atomic_write
from aurora_mlops.config import ARTIFACTS_PVC, DATA_PVC, Settings, get_settings
from aurora_mlops.katib_metrics import ADDITIONAL_METRICS, OBJECTIVE_METRIC
from aurora_mlops.tuning.katib._defaults_trial import DEFAULTS_TRIAL_ANNOTATION as _DEFAULTS
from aurora_mlops.tuning.katib._defaults_trial import defaults_assignments
from aurora_mlops.tuning.katib._halving_plan import HALVING_ANNOTATION
from aurora_mlops.tuning.katib._model import KatibExperiment
from aurora_mlops.tuning.katib._sweeps import SWEEPS, Sweep
from aurora_mlops.tuning.katib._trial_spec import (
    JOB_CONTAINER,
    PYTORCH_CONTAINER,
    TRIAL_NAME_PARAMETER,
    job_spec,
    pytorchjob_spec,
)
from aurora_mlops.tuning.space._search_space import SearchSpace
from aurora_mlops.variants import get_variant

__all__ = [
    "ARTIFACTS_CLAIM",
    "DATA_CLAIM",
    "TRIAL_NAME_PARAMETER",
    "build_experiment",
    "dump_yaml",
    "render_all",
    "rendered_specs",
]

#: PersistentVolumeClaims a trial mounts (read-only data, read-write artifacts); the
#: defaults of ``Settings.data_pvc`` / ``Settings.artifacts_pvc``, which the specs use.
DATA_CLAIM = DATA_PVC
ARTIFACTS_CLAIM = ARTIFACTS_PVC
#: How Katib reads each metric over a trial's epochs.
METRIC_STRATEGIES: dict[str, str] = {
    OBJECTIVE_METRIC: "min", "val_rmse": "min", "val_event_f1": "max", "train_loss": "min",
    "epoch": "latest",
}
_JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
_PYTORCH_SUCCESS = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
_SMOKE_NOTE = (
    "Smoke sweep: the smoke model is tiny and fixed, so its architecture parameters are replaced "
    "by fine-tune parameters (learning rate, regularisation, LoRA). Trials read /mnt/data and "
    "write /mnt/artifacts, the volumes a cluster mounts; the embedded runner maps both to "
    "folders of its work dir."
)
#: Algorithms whose Katib service ignores ``feasibleSpace.distribution``: goptuna builds uniform
#: distributions from min, max and step only (kubeflow/katib
#: ``pkg/suggestion/v1beta1/goptuna/converter.go``). Their specs say so by giving none, and the
#: embedded runner then samples uniformly too.
NO_DISTRIBUTION = ("sobol", "cmaes")


# Building -------------------------------------------------------------------------------------
def _annotations(sweep: Sweep, space: SearchSpace) -> dict[str, str]:
    tags = sorted({p.tag for p in space.parameters})
    annotations = {
        "aurora-mlops/generated-by": "aurora-mlops katib render (do not edit by hand)",
        "aurora-mlops/purpose": sweep.purpose,
        "aurora-mlops/parameter-tags": ",".join(tags),
        "aurora-mlops/start": "published checkpoint" if sweep.init else "from scratch",
    }
    if sweep.profile == "smoke":
        annotations["aurora-mlops/smoke"] = _SMOKE_NOTE
    defaults = defaults_assignments(get_variant(sweep.variant), sweep.profile, space)
    if defaults is not None and sweep.algorithm != "grid":  # a grid visits its own points
        annotations[_DEFAULTS] = json.dumps(defaults, sort_keys=True)
    if sweep.halving is not None:
        annotations[HALVING_ANNOTATION] = sweep.halving.to_annotation()
    return annotations


def _search(sweep: Sweep) -> dict[str, Any]:
    """``spec.objective``, ``spec.algorithm`` and (with median stopping) ``spec.earlyStopping``."""
    spec: dict[str, Any] = {
        "objective": {
            "type": "minimize",
            "objectiveMetricName": OBJECTIVE_METRIC,
            "additionalMetricNames": list(ADDITIONAL_METRICS),
            "metricStrategies": [
                {"name": m, "value": METRIC_STRATEGIES[m]}
                for m in (OBJECTIVE_METRIC, *ADDITIONAL_METRICS)
            ],
        },
        "algorithm": {"algorithmName": sweep.katib_algorithm},
    }
    if sweep.katib_algorithm not in ("grid", "sobol"):  # Katib's sobol takes no settings
        spec["algorithm"]["algorithmSettings"] = [{"name": "random_state", "value": "42"}]
    if sweep.early_stopping:
        spec["earlyStopping"] = {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required",
                 "value": "2" if sweep.profile == "smoke" else "5"},
                {"name": "start_step", "value": "2" if sweep.profile == "smoke" else "3"},
            ],
        }
    return spec


def _trial_template(sweep: Sweep, space: SearchSpace, settings: Settings) -> dict[str, Any]:
    if sweep.launcher == "pytorchjob":
        trial_spec = pytorchjob_spec(sweep, settings)
        primary, success = PYTORCH_CONTAINER, _PYTORCH_SUCCESS
    else:
        trial_spec = job_spec(sweep, settings)
        primary, success = JOB_CONTAINER, _JOB_SUCCESS
    return {
        "primaryContainerName": primary,
        **({"primaryPodLabels": {"training.kubeflow.org/job-role": "master"}}
           if sweep.launcher == "pytorchjob" else {}),
        "successCondition": success,
        "failureCondition": _FAILURE,
        "trialParameters": [
            {"name": TRIAL_NAME_PARAMETER, "reference": "${trialSpec.Name}",
             "description": "Katib's trial name: the trial's own output directory."},
            *({"name": p.name, "reference": p.name,
               "description": f"{p.tag} parameter" + (f": {p.help}" if p.help else "")}
              for p in space.parameters),
        ],
        "trialSpec": trial_spec,
    }


def _parameters(sweep: Sweep, space: SearchSpace) -> list[dict[str, Any]]:
    """``spec.parameters``; without distributions where Katib's service ignores them."""
    params = space.to_katib()
    if sweep.katib_algorithm in NO_DISTRIBUTION:
        for p in params:
            p["feasibleSpace"].pop("distribution", None)
    return params


def build_experiment(sweep: Sweep, settings: Settings | None = None) -> dict[str, Any]:
    """The Katib v1beta1 Experiment of ``sweep`` as plain data (dicts in a fixed key order).

    The document is validated by :class:`~aurora_mlops.tuning.katib._model.KatibExperiment`,
    the one model of an Experiment.

    Args:
        sweep: What to render.
        settings: Node pool, registry and namespace; the process settings if ``None``.

    Raises:
        ValueError: The sweep's parameters hold a combination the model refuses.
    """
    settings = settings or get_settings()
    space = sweep.space
    conflicts = space.conflicts()
    if conflicts:
        raise ValueError(f"{sweep.relpath}: {'; '.join(conflicts)}")
    spec = _search(sweep)
    spec.update({
        "parallelTrialCount": sweep.parallel_trial_count,
        "maxTrialCount": sweep.max_trial_count,
        "maxFailedTrialCount": sweep.max_failed_trial_count,
        "resumePolicy": "Never",
        "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
        "parameters": _parameters(sweep, space),
        "trialTemplate": _trial_template(sweep, space, settings),
    })
    annotations = _annotations(sweep, space)
    doc: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {
            "name": sweep.experiment_name,
            "namespace": settings.namespace,
            "labels": {
                "app.kubernetes.io/part-of": "aurora-mlops",
                "aurora-mlops/variant": sweep.variant,
                "aurora-mlops/profile": sweep.profile,
                "aurora-mlops/algorithm": sweep.algorithm,
            },
            "annotations": annotations,
        },
        "spec": spec,
    }
    # The one model of an Experiment, with Katib's webhook rules: what is rendered, Katib takes.
    KatibExperiment.model_validate(doc, context={"webhook": True})
    return doc


# Dumping --------------------------------------------------------------------------------------
#: Plain scalars Kubernetes' YAML reader takes as numbers (``1e-4`` too, unlike YAML 1.1).
_K8S_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes every string Kubernetes would read as a number."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _K8S_FLOAT, list("-+0123456789."))

_HEADER = "# Generated by `aurora-mlops katib render` from aurora_mlops.tuning; do not edit.\n"


def dump_yaml(doc: Mapping[str, Any]) -> str:
    """``doc`` as YAML: key order kept, no flow style, no line wrapping, no aliases."""
    text = yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=4096, allow_unicode=False)
    return _HEADER + text


def rendered_specs(settings: Settings | None = None) -> dict[str, str]:
    """``{relative path: YAML text}`` of every spec, in :data:`SWEEPS` order."""
    return {s.relpath: dump_yaml(build_experiment(s, settings)) for s in SWEEPS}


def render_all(out_dir: str | Path, settings: Settings | None = None) -> list[Path]:
    """Write every spec under ``out_dir`` (each file atomically); returns the paths written.

    Every spec is built before the first file is written, so a failure leaves nothing behind.
    Files are rewritten only when their content changes.
    """
    out = Path(out_dir)
    specs = rendered_specs(settings)
    written: list[Path] = []
    for rel, text in specs.items():
        path = out / rel
        if not (path.is_file() and path.read_text(encoding="utf-8") == text):
            atomic_write(path, text)
        written.append(path)
    return written
