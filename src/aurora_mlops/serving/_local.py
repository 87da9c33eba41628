"""The MLServer settings that serve a package on this machine (``python -m
aurora_mlops.serving.launch FOLDER``, or ``mlserver start FOLDER``)."""

from __future__ import annotations

import json
from pathlib import Path

from aurora_mlops.errors import AuroraMLOpsError

__all__ = ["RUNTIME_CLASS", "mlserver_config"]

#: What MLServer loads (``implementation`` here, ``MLSERVER_MODEL_IMPLEMENTATION`` on KServe).
RUNTIME_CLASS = "aurora_mlops.serving.runtime.AuroraRuntime"


def mlserver_config(
    package: str | Path,
    out: str | Path,
    *,
    name: str = "aurora",
    version: str | None = None,
    host: str = "127.0.0.1",
    http_port: int = 8080,
    grpc_port: int = 8081,
    metrics_port: int = 8082,
    parallel_workers: int = 1,
) -> Path:
    """Write ``settings.json`` and ``model-settings.json`` into ``out`` for ``package``.

    Args:
        package: A package folder (``aurora-mlops package --out``, with ``MLmodel``).
        out: The folder to give the launcher (``aurora_mlops.serving.launch``).
        name: The model's name in the v2 paths (``/v2/models/NAME/infer``).
        version: The model version reported in answers and metric labels.
        parallel_workers: MLServer's inference processes (0: in the server process).

    Raises:
        AuroraMLOpsError: ``package`` has no ``MLmodel``.
    """
    package = Path(package).resolve()
    if not (package / "MLmodel").is_file():
        raise AuroraMLOpsError(
            f"{package}: no MLmodel file; give the folder `aurora-mlops package --out` wrote"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"host": host, "http_port": http_port, "grpc_port": grpc_port,
                "metrics_port": metrics_port, "parallel_workers": parallel_workers,
                "metrics_dir": str((out / ".metrics").resolve())}
    model = {"name": name, "implementation": RUNTIME_CLASS,
             "parameters": {"uri": str(package), **({"version": version} if version else {})}}
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (out / "model-settings.json").write_text(json.dumps(model, indent=2) + "\n",
                                             encoding="utf-8")
    return out
