"""One real MLServer for the serving tests, on 127.0.0.1, serving the packaged smoke model
(started by the launcher the ServingRuntime runs)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _servers import BIN, _on_a_free_port, _Process, free_port

MODEL = "aurora-medium-res"
VERSION = "7"


@dataclass
class MLServer(_Process):
    """The launcher (``python -m aurora_mlops.serving.launch``: what the ServingRuntime runs) on
    settings written by ``aurora_mlops.serving.mlserver_config``."""

    package: Path | None = None
    metrics_port: int = 0

    name = "mlserver"
    log_name = "mlserver.log"
    probe = f"/v2/models/{MODEL}/ready"

    def command(self) -> list[str]:
        from aurora_mlops.serving import mlserver_config

        assert self.package is not None
        self.metrics_port = free_port()
        mlserver_config(self.package, self.root / "mlserver", name=MODEL, version=VERSION,
                        http_port=self.port, grpc_port=free_port(),
                        metrics_port=self.metrics_port)
        return [str(BIN / "python"), "-m", "aurora_mlops.serving.launch",
                str(self.root / "mlserver")]

    def start(self, timeout: float = 180.0) -> MLServer:
        self._spawn_and_wait(timeout)
        return self

    def infer(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST ``body`` (JSON-encoded unless bytes) to the v2 infer endpoint."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.uri}/v2/models/{MODEL}/infer", data=data,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=10) as r:
            return str(r.read().decode())


@pytest.fixture(scope="session")
def mlserver(packaged_models: dict[str, dict[str, Path]],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLServer]:
    """MLServer serving the packaged medium-res smoke model, for the whole session."""
    root = tmp_path_factory.mktemp("mlserver")
    package = packaged_models["medium-res"]["package"]
    server = _on_a_free_port(lambda port: MLServer(root=root, port=port, env=_env(),
                                                   package=package))
    yield server
    server.stop()


def _env() -> dict[str, str]:
    import os

    # MLflow draws a progress bar per artifact while it loads the model: noise in the log.
    return {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
