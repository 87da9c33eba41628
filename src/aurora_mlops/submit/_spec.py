"""What a submission is made of, checked before any network call.

The compiled pipeline file, its parameters (typed by the pipeline's own input definitions), the
version name (package version + commit) and the six-field cron of a recurring run.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import yaml

from aurora_mlops._version import __version__
from aurora_mlops.errors import ConfigError

__all__ = [
    "PipelinePackage",
    "check_cron",
    "git_commit",
    "load_package",
    "parse_params",
    "version_name",
]

#: One cron field as KFP's scheduler (robfig/cron with seconds) reads it.
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-LW#]+$")
#: KFP pipeline names: what ``kfp.dsl.pipeline(name=...)`` accepts and the UI shows.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class PipelinePackage:
    """A compiled pipeline file.

    Attributes:
        path: The YAML file (``pipelines/<name>.yaml``).
        name: ``pipelineInfo.name`` inside it (the name the pipeline is uploaded under).
        spec: The pipeline spec (the YAML's first document).
        inputs: ``{parameter: KFP parameter type}`` of the pipeline's root inputs.
        required: Inputs without a default value.
        platform: The platform spec (the YAML's second document, ``platforms``), empty when
            the pipeline has no Kubernetes settings.
    """

    path: Path
    name: str
    spec: dict[str, Any]
    inputs: dict[str, str]
    required: frozenset[str]
    platform: dict[str, Any] = dataclass_field(default_factory=dict)


def load_package(pipeline: str, pipelines_dir: str | Path = "pipelines") -> PipelinePackage:
    """Find and read a compiled pipeline.

    Args:
        pipeline: A pipeline name (``aurora-all-variants``: ``<pipelines_dir>/<name>.yaml``) or
            the path of a ``.yaml`` file.
        pipelines_dir: Where compiled pipelines live.

    Raises:
        ConfigError: The file does not exist or is not a compiled KFP pipeline.
    """
    if pipeline.endswith((".yaml", ".yml")):
        path = Path(pipeline)
    else:
        if not _NAME.match(pipeline):
            raise ConfigError(f"--pipeline {pipeline!r} is not a pipeline name (lower-case "
                              "letters, digits and '-') or a .yaml file")
        path = Path(pipelines_dir) / f"{pipeline}.yaml"
    if not path.is_file():
        raise ConfigError(f"--pipeline: {path} does not exist; run `aurora-mlops pipeline "
                          "compile` first or pass the path of a compiled pipeline")
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        spec = docs[0]
    except (yaml.YAMLError, IndexError) as e:
        raise ConfigError(f"--pipeline: {path} is not valid YAML ({e}); recompile it") from e
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise ConfigError(f"--pipeline: {path} is not a compiled KFP pipeline (no pipelineInfo "
                          "or root); recompile it with `aurora-mlops pipeline compile`")
    params = (spec["root"].get("inputDefinitions") or {}).get("parameters") or {}
    inputs = {k: str(v.get("parameterType", "STRING")) for k, v in params.items()}
    required = frozenset(k for k, v in params.items()
                         if "defaultValue" not in v and not v.get("isOptional"))
    platform = next((d for d in docs[1:] if isinstance(d, dict) and "platforms" in d), {})
    return PipelinePackage(path=path, name=str(spec["pipelineInfo"]["name"]), spec=spec,
                           inputs=inputs, required=required, platform=platform)


def _coerce(name: str, text: str, kind: str) -> Any:
    """``text`` as the KFP parameter type ``kind``; ConfigError naming ``name`` if it is not."""
    try:
        if kind == "NUMBER_INTEGER":
            return int(text)
        if kind == "NUMBER_DOUBLE":
            return float(text)
        if kind == "BOOLEAN":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError(text)
            return lowered == "true"
        if kind in ("LIST", "STRUCT"):
            value = json.loads(text)
            if not isinstance(value, list if kind == "LIST" else dict):
                raise ValueError(text)
            return value
    except ValueError as e:
        example = {"NUMBER_INTEGER": "4", "NUMBER_DOUBLE": "0.5", "BOOLEAN": "true",
                   "LIST": '["a", "b"]', "STRUCT": '{"k": 1}'}[kind]
        raise ConfigError(f"--param {name}={text}: {name} is a {kind} parameter; give a value "
                          f"like {name}={example}") from e
    return text


def parse_params(items: list[str], package: PipelinePackage) -> dict[str, Any]:
    """``["k=v", ...]`` as typed pipeline arguments.

    Raises:
        ConfigError: An item is not ``key=value``, names no input of the pipeline, repeats a
            key, or has a value of the wrong type.
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--param {item!r} is not key=value; write e.g. --param "
                              "max_trials=8")
        if key not in package.inputs:
            valid = ", ".join(sorted(package.inputs)) or "none"
            raise ConfigError(f"--param {key}: {package.name} has no parameter {key!r}; "
                              f"its parameters are: {valid}")
        if key in params:
            raise ConfigError(f"--param {key} is given twice; give each parameter once")
        params[key] = _coerce(key, value, package.inputs[key])
    missing = sorted(package.required - params.keys())
    if missing:
        raise ConfigError(f"--param: {package.name} needs {', '.join(missing)} (no default); "
                          f"add --param {missing[0]}=VALUE")
    return params


def check_cron(expression: str) -> str:
    """A KFP cron expression (six fields, seconds first), normalised to single spaces.

    Raises:
        ConfigError: Not six fields, or a field with characters cron does not use.
    """
    fields = expression.split()
    if len(fields) != 6:
        hint = f" (for a five-field cron use '0 {expression.strip()}')" if len(fields) == 5 else ""
        raise ConfigError(f"--cron {expression!r} has {len(fields)} fields; KFP crons have six, "
                          f"seconds first, e.g. '0 0 2 * * *' for 02:00 every day{hint}")
    for field in fields:
        if not _CRON_FIELD.match(field):
            raise ConfigError(f"--cron {expression!r}: field {field!r} is not a cron field; "
                              "use numbers, ranges (1-5), lists (1,3), steps (*/15), * or ?")
    return " ".join(fields)


def git_commit(configured: str | None = None, cwd: str | Path = ".") -> str:
    """The commit to name versions after: the configured one (the image's), else ``git``'s.

    Returns ``"nocommit"`` outside a git checkout without a configured commit.
    """
    if configured and configured != "unknown":
        return configured
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "nocommit"
    return out or "nocommit"


def version_name(pipeline: str, commit: str, version: str = __version__) -> str:
    """``<pipeline>-<package version>-<first 8 characters of the commit>``."""
    return f"{pipeline}-{version}-{commit[:8]}"
