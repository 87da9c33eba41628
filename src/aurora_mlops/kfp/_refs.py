"""References, not copies: what the pipeline's artifacts hold when the files sit on a volume.

The dataset and the checkpoints (gigabytes in production) stay on the data and artifacts
volumes that every model step mounts. The KFP artifact between two steps is a folder with one
small ``ref.json`` naming the file or folder on the volume, so the artifact store carries a
few hundred bytes instead of the file, and the KFP UI still shows the lineage.

Each run writes under ``<root>/pipeline-runs/<run id>/<variant>/``, so two runs (or two
variants) never write over each other's files, and a cached artifact always names files of
the run that made them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aurora_mlops._io import write_json
from aurora_mlops.errors import ConfigError

__all__ = ["REF_FILE", "SA_NAMESPACE_FILE", "pod_namespace", "read_ref", "run_folder",
           "write_ref"]

#: The one file of a reference artifact.
REF_FILE = "ref.json"
#: Where Kubernetes mounts the pod's own namespace (the ServiceAccount token volume).
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def write_ref(artifact_dir: str | Path, target: str | Path, **meta: Any) -> dict[str, Any]:
    """Write ``artifact_dir/ref.json`` naming ``target`` (absolute) with ``meta`` beside it."""
    doc = {"path": str(Path(target).resolve()), **meta}
    out = Path(artifact_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / REF_FILE, doc, sort_keys=False)
    return doc


def read_ref(artifact_dir: str | Path) -> Path:
    """The file or folder that the reference artifact ``artifact_dir`` names.

    Raises:
        ConfigError: No ``ref.json``, or it names something that is not there (the volume is
            not mounted where the writing step had it, or the files were removed).
    """
    ref = Path(artifact_dir) / REF_FILE
    try:
        path = Path(json.loads(ref.read_text(encoding="utf-8"))["path"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{ref}: not a reference written by this pipeline ({e})") from e
    if not path.exists():
        raise ConfigError(f"{ref} names {path}, which does not exist here: mount the same "
                          "volumes at the same paths in every step, and keep the run's files")
    return path


def run_folder(root: str | Path, run_id: str, variant: str, step: str) -> Path:
    """``root/pipeline-runs/<run_id>/<variant>/<step>``: one step's files of one run."""
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise ConfigError(f"run_id {run_id!r} cannot name a folder; the pipeline passes its "
                          "own run id")
    return Path(root) / "pipeline-runs" / run_id / variant / step


def pod_namespace(path: str | Path = SA_NAMESPACE_FILE) -> str | None:
    """The namespace this pod runs in (``None`` outside a pod)."""
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
