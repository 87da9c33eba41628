"""One pipeline or component compiled into the YAML text that ships.

Kept apart from :mod:`._compile` (which gathers every pipeline, the monitor's included) so
that the monitor's retrain step can compile ``aurora-tune-and-publish`` alone.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

__all__ = ["compiled_text"]


def compiled_text(func: object) -> str:
    """The YAML that ``kfp``'s compiler writes for ``func`` (a pipeline or a component),
    less the platform spec's ``optional: false``."""
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="aurora-kfp-") as tmp:
        path = Path(tmp) / "compiled.yaml"
        compiler.Compiler().compile(func, str(path))
        return _without_default_optional(path.read_text(encoding="utf-8"))


def _without_default_optional(text: str) -> str:
    """The compiled YAML without ``optional: false`` in its platform spec.

    kfp-kubernetes 2.17 writes ``optional: false`` on every ``secretAsEnv``. The field arrived
    in KFP 2.15.0 (kubeflow/pipelines kubernetes_platform/proto/kubernetes_executor_config.proto,
    ``SecretAsEnv.optional = 3``), and older API servers unmarshal each task's Kubernetes config
    strictly (backend/src/v2/compiler/argocompiler/container.go, ``protojson.Unmarshal``), so
    they refuse the whole run over a field whose value is the default anyway. Left out, the
    pipelines start on the older releases that support their other features.
    """
    spec, sep, platform = text.partition("\n---\n")
    if not sep:
        return text
    return spec + sep + re.sub(r"\n[ ]+optional: false(?=\n)", "", platform)
