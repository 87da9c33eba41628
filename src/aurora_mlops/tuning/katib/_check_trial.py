"""``katib check`` of the trial template: trial parameters, placeholders, the trial's Job.

Katib substitutes ``${trialParameters.X}`` through ``spec.trialTemplate.trialParameters`` and
converts the trial spec to a Kubernetes object: a ``batch/v1`` Job (the fields of
:data:`~._kube.BatchJob`, anything else is refused) or a Kubeflow ``PyTorchJob``. These checks
find what would fail there: unused or undefined trial parameters, a missing primary container,
an unpinned image, unknown fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from aurora_mlops.tuning.katib._kube import BatchJob, PyTorchJob
from aurora_mlops.tuning.katib._problems import (
    _Ctx,
    _join,
    _map,
    _seq,
    _str,
    describe,
    model_problems,
)

__all__ = ["check_trial_template"]

# Katib's vocabulary ---------------------------------------------------------------------------
_META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")
_PLACEHOLDER_RE = re.compile(r"\$\{trialParameters\.(.+?)\}")
_META_RE = re.compile(r"\$\{trialSpec\.(.+?)\}")


def _containers(obj: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``(path, container)`` under any ``containers`` list of an unstructured object."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = _join(path, str(key))
            if key == "containers" and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        yield f"{where}[{i}]", item
            else:
                yield from _containers(value, where)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _containers(item, f"{path}[{i}]")



def _check_trial_spec(c: _Ctx, trial: dict[str, Any], primary: str) -> None:
    base = "spec.trialTemplate.trialSpec"
    api, kind = trial.get("apiVersion"), trial.get("kind")
    if not api or not kind:
        c.add(base, "apiVersion and kind must be specified")
    meta = _map(trial.get("metadata"))
    if meta.get("name") or meta.get("namespace"):
        c.add(f"{base}.metadata", "name and namespace must be omitted (Katib sets them)")
    if api == "batch/v1" and kind == "Job":
        c.out.extend(model_problems(BatchJob, trial, base))
        pod = _map(_map(_map(trial.get("spec")).get("template")).get("spec"))
        if not _seq(pod.get("containers")):
            c.add(f"{base}.spec.template.spec.containers", "must list at least one container")
        restart = pod.get("restartPolicy")
        if restart not in ("Never", "OnFailure"):
            c.add(f"{base}.spec.template.spec.restartPolicy",
                  f"a Job needs Never or OnFailure, got {describe(restart)}")
        scope = f"{base}.spec.template.spec.containers"
    elif kind == "PyTorchJob":
        c.out.extend(model_problems(PyTorchJob, trial, base))
        replicas = _map(_map(trial.get("spec")).get("pytorchReplicaSpecs"))
        if "Master" not in replicas:
            c.add(f"{base}.spec.pytorchReplicaSpecs.Master", "must be specified")
        for role, replica in replicas.items():
            names = [ct.get("name") for _, ct in _containers(replica, "")]
            if "pytorch" not in names:
                c.add(f"{base}.spec.pytorchReplicaSpecs.{role}", "needs a container named "
                      "pytorch (the training operator's convention)")
        scope = f"{base}.spec.pytorchReplicaSpecs.Master"
    else:
        scope = base
    found = False
    for where, container in _containers(trial, base):
        if container.get("name") == primary and where.startswith(scope):
            found = True
        image = container.get("image")
        if isinstance(image, str):
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if "@" not in image and tag in ("", "latest"):
                c.add(f"{where}.image", f"{image!r} must carry a pinned tag, not latest")
        elif "image" not in container:
            c.add(f"{where}.image", "must be specified")
    if primary and not found:
        c.add("spec.trialTemplate.primaryContainerName",
              f"container {primary!r} does not exist in {scope}")



def _check_trial_parameters(c: _Ctx, items: list[Any], template: str,
                            parameter_names: list[str]) -> tuple[set[str], set[str]]:
    """Problems of ``spec.trialTemplate.trialParameters``; their names and references."""
    path = "spec.trialTemplate"
    defined: set[str] = set()
    refs: set[str] = set()
    for i, raw in enumerate(items):
        tp = _map(raw)
        where = f"{path}.trialParameters[{i}]"
        name, ref = _str(tp.get("name")), _str(tp.get("reference"))
        if not name or not ref or "{" in name or "}" in name:
            c.add(where, "name and reference must be specified and name must not contain "
                  "'{' or '}'")
            continue
        if name in defined:
            c.add(f"{where}.name", f"trial parameter {name} is defined twice")
            continue
        if ref in refs:
            c.add(f"{where}.reference", f"reference {ref} is used twice")
            continue
        defined.add(name)
        refs.add(ref)
        meta = _META_RE.fullmatch(ref)
        if meta:
            key = meta.group(1)
            labelled = re.fullmatch(r"(Labels|Annotations)\[(.+)\]", key)
            if key not in _META_KEYS and not labelled:
                c.add(f"{where}.reference", f"{ref} is not trial metadata Katib can substitute "
                      "(Name, Namespace, Kind, APIVersion, Labels[k], Annotations[k])")
        elif parameter_names and ref not in parameter_names:
            c.add(f"{where}.reference", f"{ref!r} is not a parameter in spec.parameters "
                  f"({', '.join(parameter_names)})")
        if f"${{trialParameters.{name}}}" not in template:
            c.add(f"{where}.name", f"${{trialParameters.{name}}} is not used in the trial "
                  "template")
    return defined, refs


def check_trial_template(c: _Ctx, parameter_names: list[str]) -> None:
    """Problems of ``spec.trialTemplate`` (``parameter_names``: the spec's parameters)."""
    path = "spec.trialTemplate"
    if "trialTemplate" not in c.spec:
        c.add(path, "must be specified")
        return
    tt = _map(c.spec.get("trialTemplate"))
    primary = _str(tt.get("primaryContainerName"))
    if not primary:
        c.add(f"{path}.primaryContainerName", "must be specified")
    for key in ("successCondition", "failureCondition"):
        if not tt.get(key):
            c.add(f"{path}.{key}", "must be specified")
    has_spec, has_cm = "trialSpec" in tt, "configMap" in tt
    if has_spec == has_cm:
        c.add(path, "exactly one of trialSpec and configMap must be specified")
        return
    if "trialParameters" not in tt:
        c.add(f"{path}.trialParameters", "must be specified")
        return
    if has_cm:
        cm = _map(tt.get("configMap"))
        for key in ("configMapName", "configMapNamespace", "templatePath"):
            if not cm.get(key):
                c.add(f"{path}.configMap.{key}", "must be specified")
        return  # the template itself lives on the cluster
    trial = _map(tt.get("trialSpec"))
    template = json.dumps(trial)
    defined, refs = _check_trial_parameters(c, _seq(tt.get("trialParameters")), template,
                                            parameter_names)
    for used in sorted(set(_PLACEHOLDER_RE.findall(template)) - defined):
        c.add(f"{path}.trialSpec", f"${{trialParameters.{used}}} is used but not defined in "
              f"{path}.trialParameters")
    for meta_use in sorted(set(_META_RE.findall(template))):
        c.add(f"{path}.trialSpec", f"${{trialSpec.{meta_use}}} is substituted only through a "
              f"trial parameter (reference: ${{trialSpec.{meta_use}}}); used directly it stays "
              "literal")
    for i, pname in enumerate(_map(p).get("name") for p in _seq(c.spec.get("parameters"))):
        if isinstance(pname, str) and pname and pname not in refs:
            c.add(f"spec.parameters[{i}]", f"no trial parameter references {pname}: Katib "
                  "fails every trial (assignments and trial parameters must match)")
    _check_trial_spec(c, trial, primary)
