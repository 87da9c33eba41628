"""The Experiment a pipeline run creates: which rendered sweep, its budgets, a name Katib takes.

A pipeline step re-renders the sweep (so the trials get the run's settings and budgets) and
picks, among the launchers rendered for the variant, algorithm and profile, one whose pods fit
a node of the GPU pool (``Settings.gpus_per_node``): a four-GPU high-res trial runs as a
PyTorchJob of one-GPU pods on a pool of one-GPU nodes. The run's id goes into the name, which
must stay within Katib's 40 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aurora_mlops.config import Settings, get_settings
from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.katib._webhook import MAX_NAME_LENGTH

__all__ = ["experiment_name", "gpus_per_pod", "pipeline_experiment"]

#: Characters of the base name that stay readable before the name is cut and hashed.
_MIN_BASE = 12
_PROJECT_PREFIX = "aurora-"
#: Prefer a plain Job (one pod) when it fits; a PyTorchJob only when it must.
_LAUNCHER_ORDER = ("job", "pytorchjob")


def experiment_name(base: str, suffix: str) -> str:
    """``<base>-<suffix>`` within Katib's 40 characters, the base shortened only if needed.

    Katib's webhook limits the whole ``metadata.name`` (``MAX_NAME_LENGTH`` of the checks).

    The suffix (a run id) is lower-cased and reduced to ``[a-z0-9-]``. A base that leaves no
    room first loses the ``aurora-`` prefix, then is cut and ends in four hex digits of its
    full name's hash, so two sweeps never share a shortened name.

    Raises:
        ConfigError: The suffix is so long that under 12 characters of the base would remain.
    """
    clean = re.sub(r"[^a-z0-9]+", "-", suffix.lower()).strip("-")
    if not clean:
        return base
    room = MAX_NAME_LENGTH - len(clean) - 1
    if room < _MIN_BASE:
        raise ConfigError(f"name suffix {suffix!r} is too long for Katib's {MAX_NAME_LENGTH}-"
                          f"character Experiment names; pass at most "
                          f"{MAX_NAME_LENGTH - _MIN_BASE - 1} characters (e.g. run_id[:8])")
    short = base
    if len(short) > room and short.startswith(_PROJECT_PREFIX):
        short = short[len(_PROJECT_PREFIX):]
    if len(short) > room:
        digest = hashlib.sha256(base.encode()).hexdigest()[:4]
        short = f"{short[:room - 5].rstrip('-')}-{digest}"
    return f"{short}-{clean}"


def _pod_specs(obj: Any) -> Iterator[Mapping[str, Any]]:
    """Every pod spec (a mapping with ``containers``) inside a trial's Kubernetes object."""
    if isinstance(obj, Mapping):
        if isinstance(obj.get("containers"), list):
            yield obj
            return
        for value in obj.values():
            yield from _pod_specs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _pod_specs(value)


def gpus_per_pod(doc: Mapping[str, Any]) -> int:
    """The most ``nvidia.com/gpu`` that one pod of the Experiment's trials asks for (0: none)."""
    trial_spec = doc["spec"]["trialTemplate"]["trialSpec"]
    return max((sum(int((c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0))
                    for c in pod["containers"]) for pod in _pod_specs(trial_spec)), default=0)


def _choose(variant: str, algorithm: str, profile: str,
            settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The sweep (and its rendered document) whose pods fit a node; Job before PyTorchJob."""
    from aurora_mlops.tuning.katib._render import build_experiment
    from aurora_mlops.tuning.katib._sweeps import SWEEPS

    sweeps = sorted((s for s in SWEEPS if (s.variant, s.algorithm, s.profile)
                      == (variant, algorithm, profile)),
                     key=lambda s: _LAUNCHER_ORDER.index(s.launcher))
    if not sweeps:
        have = sorted({f"{s.variant}/{s.algorithm}/{s.profile}" for s in SWEEPS})
        raise ConfigError(f"no rendered Experiment for variant={variant} algorithm={algorithm} "
                          f"profile={profile}; choose one of {', '.join(have)}")
    needs = []
    for sweep in sweeps:
        doc = build_experiment(sweep, settings)
        gpus = gpus_per_pod(doc)
        if gpus <= settings.gpus_per_node:
            return sweep, doc
        needs.append(f"{sweep.relpath} ({sweep.launcher}) needs {gpus} GPUs in one pod")
    fitting = sorted({f"{s.variant}/{s.algorithm}/{s.profile}" for s in SWEEPS
                      if s.variant == variant and s.profile == profile
                      and gpus_per_pod(build_experiment(s, settings)) <= settings.gpus_per_node})
    raise ConfigError(
        f"no rendered Experiment for {variant}/{algorithm}/{profile} fits a node with "
        f"AURORA_MLOPS_GPUS_PER_NODE={settings.gpus_per_node} GPUs: {'; '.join(needs)}; set "
        "AURORA_MLOPS_GPUS_PER_NODE to the GPUs of one node of your pool, or choose "
        f"{', '.join(fitting) or 'another variant'}")


def pipeline_experiment(*, variant: str, algorithm: str, profile: str, max_trials: int,
                        parallel_trials: int, extra_args: Iterable[str] = (),
                        name_suffix: str = "", settings: Settings | None = None) -> Experiment:
    """The rendered Experiment of ``variant``/``algorithm``/``profile`` with pipeline budgets.

    Of the launchers rendered for it, the first whose pods fit ``settings.gpus_per_node``
    (a Job before a PyTorchJob). ``extra_args`` are appended to the trial container's command
    (later ``--NAME=VALUE`` win); ``name_suffix`` (the run's id) makes the name unique per
    run, within Katib's 40 characters (:func:`experiment_name`).

    Args:
        settings: Registry, node pool, volumes of the trials (default: the process settings,
            which the pipeline sets from its compile-time values).

    Raises:
        ConfigError: No such rendered Experiment, none whose pods fit a node, or a budget
            below 1.
    """
    from aurora_mlops.tuning.katib._experiment_load import parse_experiment

    if max_trials < 1 or parallel_trials < 1:
        raise ConfigError(f"max_trials and parallel_trials must be >= 1, got {max_trials} and "
                          f"{parallel_trials}")
    sweep, doc = _choose(variant, algorithm, profile, settings or get_settings())
    spec = doc["spec"]
    spec["maxTrialCount"] = max_trials
    spec["parallelTrialCount"] = min(parallel_trials, max_trials)
    spec["maxFailedTrialCount"] = min(spec.get("maxFailedTrialCount", max_trials), max_trials)
    doc["metadata"]["name"] = experiment_name(doc["metadata"]["name"], name_suffix)
    primary = spec["trialTemplate"]["primaryContainerName"]
    for pod in _pod_specs(spec["trialTemplate"]["trialSpec"]):
        for container in pod["containers"]:
            if container["name"] == primary:
                container["command"] = [*container["command"], *extra_args]
    return parse_experiment(doc, source=f"<rendered {sweep.relpath}>")
